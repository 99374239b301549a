#!/usr/bin/python3
"""Writes src/chat/jinja_cases.inc: the template engine's feature cases with
the output Python's jinja2 (configured as transformers configures it) renders
for each, or nullptr where jinja2 raises. Add a case below and rerun:
    /usr/bin/python3 src/chat/tools/gen_jinja_cases.py
"""
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import render_jinja  # noqa: E402

# c(name, template, context or None for DEFAULT, substring of our error message when jinja2 raises)
C = []
def c(name, t, ctx=None, err=None): C.append((name, t, ctx, err))

# --- whitespace control / lexer
c("trim_lstrip_blocks", "a\n  {% if true %}\n  b\n  {% endif %}\n  c\n")
c("dash_strip", "  {%- if true %}\nx{% endif %}  \n  {{ 1 }}  {# c #}\n  {#- c -#}   y")
c("dash_both_sides", "{% for i in range(3) -%}\n  {{ i }}\n{%- endfor %}")
c("lstrip_indented_loop", "{% for i in range(3) %}\n    {{ i }}\n{% endfor %}")
c("raw_block", "{% raw %}{{ not parsed }}{% endraw %}\n{%- raw -%}  {% x %}  {%- endraw %}z")
c("plus_disables", "{%+ if true %}a{% endif +%}\nb")
c("var_tag_no_trim", "{{ 'a' }}\n{{ 'b' }}\n")
c("comment_trim", "x\n    {# comment #}\ny")
c("crlf_source", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n")
c("trailing_newline_kept_once", "x\n\n")
c("dash_var", "a   {{- 'b' -}}   c")
c("lstrip_not_for_vars", "  {{ 'v' }}\n  {% if true %}t{% endif %}")
c("nested_braces_in_var", "{{ {'a': {'b': 1}} }}")
c("string_with_tag_chars", "{{ '%}' ~ '}}' ~ '{%' }}")
# --- literals
c("literals", "{{ \"a\" \"b\" 'c' }} {{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1e3 }} {{ 2.5e-3 }} {{ True }} {{ none }}")
c("string_escapes", "{{ \"\\u00e9\\x41\\101\\n\\t\"|tojson }} {{ 'it\\'s' }} {{ 'back\\\\slash' }} {{ 'unknown\\d' }}")
c("list_dict_tuple_literals", "{{ [1, 'a', none, true, 2.5] }} {{ {'k': [1, {'n': none}]} }} {{ (1,) }} {{ (1, 2) }} {{ () }}")
c("repr_quotes", "{{ [\"a'b\", 'c\"d', \"x'y\\\"z\", \"\\n\"] }}")
c("repr_unicode", "{{ ['é', '\\u00a0', '\\u200b', '😀', '\\x7f'] }}")
c("float_repr", "{{ 3.0 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ -0.0 }} {{ 1e100 }} {{ 123456789.123 }} {{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 1.5e-7 }}")
# --- operators
c("arithmetic", "{{ 10 // 3 }} {{ 10 % 3 }} {{ 2 ** 10 }} {{ 10 / 4 }} {{ 4 / 2 }} {{ 1 + 2.5 }} {{ 7 - 10 }} {{ -(3) }} {{ +3 }} {{ 2 ** -1 }} {{ true + 1 }}")
c("floor_mod_signs", "{{ -7 // 2 }} {{ 7 // -2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 // 2 }} {{ 7.5 % 2 }} {{ -7.5 % 2 }}")
c("pow_precedence", "{{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 2 * 3 + 4 }} {{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }}")
c("string_ops", "{{ 'ab' + 'cd' }} {{ 3 * 'ab' }} {{ 'ab' * 2 }} {{ 'x' * 0 }} {{ [1] * 2 }} {{ [1, 2] + [3] }} {{ 'a' ~ 1 ~ none ~ 1.0 ~ true ~ [1] }}")
c("comparisons", "{{ 1 == 1.0 }} {{ true == 1 }} {{ [1, 2] == [1, 2] }} {{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }} {{ none == none }} {{ (1, 2) == [1, 2] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ [1, 2] < [1, 3] }} {{ 'a' < 'b' }} {{ 'B' < 'a' }}")
c("membership", "{{ 'a' in 'abc' }} {{ 'x' not in ['a', 'b'] }} {{ 'a' in {'a': 1} }} {{ 1 in [1.0] }} {{ 'q' in undefined_var }}")
c("logic_returns_operands", "{{ 'abc' if 1 > 2 else 'def' }} {{ 1 if none else 2 }} {{ [] or 'empty' }} {{ 0 and 'x' }} {{ 'a' and 'b' }} {{ not 0 }} {{ not 'x' }}")
c("cond_without_else", "[{{ 'x' if false }}] [{{ 1 if true }}]")
c("filter_binds_tighter", "{{ [1, 2, 3]|length - 1 }} {{ -3|abs }} {{ 'a' ~ 'b'|upper }}")
c("not_precedence", "{{ not 1 == 2 }} {{ not true and false }} {{ not (true and false) }}")
# --- variables, undefined
c("undefined_prints_empty", "[{{ nope }}] [{{ nope|default('dflt') }}] [{{ ''|default('dflt') }}] [{{ ''|default('dflt', true) }}] [{{ n|default('x') }}] [{{ nope|length }}] [{{ nope|list }}] [{{ nope|join(',') }}] [{{ nope|upper }}] [{{ nope|string }}] [{{ nope|trim }}]")
c("undefined_loop_else", "{% for i in nope %}{{ i }}{% else %}nothing{% endfor %}")
c("undefined_attr_raises", "{{ nope.z }}", None, "'nope' is undefined")
c("undefined_item_raises", "{{ nope['z'] }}", None, "'nope' is undefined")
c("undefined_arith_raises", "{{ nope + 1 }}", None, "'nope' is undefined")
c("undefined_concat_ok", "{{ nope ~ 'a' }}|{{ 'a' ~ nope }}")
c("undefined_chain_raises", "{{ d.missing.deeper }}", None, "has no attribute 'missing'")
c("undefined_tests", "{{ nope is defined }} {{ nope is undefined }} {{ d.missing is defined }} {{ n.foo is defined }} {{ nope is iterable }} {{ nope is none }} {{ nope is string }}")
c("undefined_more", "{{ nope is sequence }} {{ nope in {'a': 1} }} [{{ nope|last }}] {{ 'T' if nope|reverse else 'F' }} {{ nope|reverse|list }} {{ nope|first is defined }} {{ nope is callable }}")
c("undefined_int_raises", "{{ nope|int }}", None, "'nope' is undefined")
c("percent_list_is_mapping_like", "{{ 'q' % [1, 2] }} {{ 'q' % {'a': 1} }} {{ '%s' % [1, 2] }}")
c("empty_subscript", "[{{ d[] }}]")
c("undefined_compare", "{{ nope == nope2 }} {{ nope == 1 }} {{ nope != none }}")
c("undefined_call_raises", "{{ undefined_fn() }}", None, "'undefined_fn' is undefined")
c("none_attr_is_undefined", "[{{ n.foo }}] [{{ n['x'] }}]")
c("dict_access", "{{ d.a }} {{ d['b'] }} {{ d.b[1] }} {{ d.b.0 }} [{{ d.missing }}] {{ d.get('missing', 'dv') }} {{ d.get('a') }} {{ d.get('zz') }}")
c("list_index", "[{{ msgs[5] }}] {{ msgs[-1].role }} {{ msgs.0.role }} {{ msgs[0]['content'] }}")
c("string_index", "{{ s[0] }} {{ s[-1] }} [{{ s[100] }}] {{ 'héllo'[1] }}")
c("dict_method_wins_over_key", "{{ {'items': 1}.items()|list }} {{ {'keys': 5}['keys'] }}")
c("dict_views", "{{ {'a': 1}.keys() }} {{ {'a': 1}.items() }} {{ {'a': 1}.values() }} [{{ {'a': 1}.keys()[0] }}] {{ {'a': 1}.keys()|list }} {{ {'a': 1}.keys() is sequence }} {{ {'a': 1}.keys()|length }}")
# --- slicing
c("slicing", "{{ [1, 2, 3][::-1] }} {{ 'hello'[1:3] }} {{ 'hello'[-2:] }} {{ [1, 2, 3, 4][::2] }} {{ [1, 2, 3, 4][-3:-1] }} [{{ 'abc'[5:] }}] {{ 'abc'[::-1] }} {{ [1, 2, 3, 4, 5][1:4:2] }} {{ [1, 2, 3, 4, 5][4:1:-2] }} {{ 'héllo'[::-1] }}")
c("slice_step_zero", "{{ [1, 2][::0] }}", None, "slice step cannot be zero")
# --- statements
c("if_elif_else", "{% for x in [-1, 0, 1] %}{% if x < 0 %}neg{% elif x == 0 %}zero{% else %}pos{% endif %} {% endfor %}")
c("for_loop_vars", "{% for m in msgs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.cycle('x', 'y') }};{% endfor %}")
c("for_prev_next", "{% for i in [1, 2, 3] %}[{{ loop.previtem }}|{{ loop.nextitem }}]{% endfor %}")
c("for_filtered", "{% for x in [1, 2, 3, 4] if x is even %}{{ loop.index }}/{{ loop.length }}:{{ x }} {% endfor %}")
c("for_else", "{% for i in [] %}x{% else %}empty{% endfor %}{% for i in [1] %}one{% else %}no{% endfor %}")
c("for_unpack", "{% for k, v in d|items %}{{ k }}={{ v }}{{ ',' if not loop.last }}{% endfor %} {% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %} {% for (a, b) in [(1, 2)] %}{{ a }}{{ b }}{% endfor %}")
c("for_dict_and_string", "{% for k in d %}{{ k }}{% endfor %} {% for ch in 'abc' %}{{ ch }}.{% endfor %}")
c("for_unpack_mismatch", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", None, "too many values to unpack")
c("break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}")
c("nested_loops", "{% for a in [[1, 2], [3, 4]] %}{% for b in a %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index }};{% endfor %}")
c("loop_scoping", "{% set x = 5 %}{% for i in [1, 2, 3] %}[{{ x }}]{% set x = i %}{% endfor %}{{ x }}")
c("loop_scoping_fresh_frame", "{% for i in [1, 2, 3] %}[{{ y }}]{% set y = i %}{% endfor %}")
c("loop_var_reassign", "{% for t in [{'function': {'name': 'f'}}, {'name': 'g'}] %}{% if t.function %}{% set t = t.function %}{% endif %}{{ t.name }}{% endfor %}")
c("if_does_not_scope", "{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}")
c("set_tuple", "{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}")
c("set_block", "{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}{{ y }}")
c("namespace", "{% set ns = namespace(found=false, items=[]) %}{% for m in msgs %}{% if m.role == 'assistant' %}{% set ns.found = true %}{% set ns.items = ns.items + [m.content] %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.items }} {{ ns }}")
c("namespace_from_dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}")
c("set_attr_on_non_namespace", "{% set d2 = {} %}{% set d2.x = 1 %}", None, "namespace")
c("with_block", "{% with a = 5, b = 6 %}{{ a }}{{ b }}{% endwith %}[{{ a }}]")
c("filter_block", "{% filter upper %}hello {{ 'world' }}{% endfilter %}{% filter trim|title %}  a b  {% endfilter %}")
c("generation_block", "{% generation %}gen {{ 1 }}{% endgeneration %}")
c("macro_defaults", "{% macro m(a, b='x') -%}\n[{{ a }}|{{ b }}|{{ c }}]\n{%- endmacro %}\n{{ m(1) }}{{ m(2, 'y') }}{{ m(b=3, a=4) }}{{ m() }}")
c("macro_sees_globals", "{% set g = 'G' %}{% macro m() %}{{ g }}{{ s }}{% endmacro %}{{ m() }}")
c("macro_varargs_kwargs", "{% macro lst() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ lst(1, 2, a=3) }}")
c("macro_too_many_args", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", None, "takes not more than 1 argument")
c("macro_unknown_kwarg", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(z=2) }}", None, "no keyword argument 'z'")
c("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}")
c("macro_default_uses_param", "{% macro m(a, b=a ~ '!') %}{{ b }}{% endmacro %}{{ m('x') }}")
c("call_block", "{% macro outer(x) %}<{{ caller() }}|{{ x }}>{% endmacro %}{% call outer(1) %}inside{% endcall %}")
c("call_block_args", "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(item) each([1, 2]) %}[{{ item }}]{% endcall %}")
c("joiner", "{% set j = joiner(', ') %}{% for i in [1, 2, 3] %}{{ j() }}{{ i }}{% endfor %}")
c("range_forms", "{{ range(3)|list }} {{ range(1, 4)|list }} {{ range(10, 0, -3)|list }} {{ range(0)|list }}")
c("range_object", "{{ range(3) }} {{ range(1, 5, 2) }} {{ range(3)[1] }} {{ range(3) == [0, 1, 2] }} {{ 2 in range(3) }} {{ range(3) is sequence }} {{ range(0) or 'empty' }}")
c("range_not_json", "{{ range(2)|tojson }}", None, "not JSON serializable")
c("range_too_big", "{{ range(100001)|length }}", None, "Range too big")
c("dict_global", "{{ dict(a=1, b='x') }}")
c("raise_exception", "{{ raise_exception('boom') }}", None, "boom")
c("strftime_now_year", "{{ strftime_now('%Y')|length }}")
# --- string methods
c("str_strip_split", "{{ '  abc  '|trim }}|{{ 'xxabcxx'.strip('x') }}|{{ ' a b '.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ '  a  b  '.split(none, 1) }}|{{ '\\n\\nx\\n'.lstrip('\\n') }}|{{ 'x\\n\\n'.rstrip() }}")
c("str_unicode_whitespace", "{{ '\\u3000 a\\u00a0'.strip()|length }} {{ 'a\\u2003b'.split() }}")
c("str_case", "{{ 'Hello'|upper }} {{ 'Hello'|lower }} {{ 'hello world'|capitalize }} {{ 'hELLO wORLD'.title() }} {{ 'hello-world foo(bar'|title }} {{ \"1st x'y\"|title }} {{ \"1st x'y\".title() }} {{ 'ß'|upper }} {{ 'ΣΑΣ'|lower }} {{ 'ÉCOLE'|lower }}")
c("str_find_count_replace", "{{ 'abc'.replace('b', 'X') }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'ab'.replace('', '-') }} {{ 'abcabc'.find('c') }} {{ 'abcabc'.rfind('c') }} {{ 'abcabc'.count('bc') }} {{ 'héllo'.find('l') }} {{ 'abc'.find('z') }}")
c("str_startswith", "{{ 'abc'.startswith('a') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'abc'.startswith('b', 1) }} {{ '<tool_response>x</tool_response>'.startswith('<tool_response>') }}")
c("str_join_format", "{{ ' '.join(['a', 'b']) }} {{ ','.join('abc') }} {{ '{}:{}'.format('a', 1) }} {{ '{0}{0}'.format('x') }} {{ '{name}!'.format(name='n') }} {{ '{!r}'.format('q') }}")
c("str_misc_methods", "{{ 'line1\\nline2\\r\\nline3'.splitlines() }} {{ 'ab'.ljust(4, '-') }}|{{ 'ab'.rjust(4) }}|{{ 'ab'.center(6, '*') }} {{ 'a-b-c'.partition('-') }} {{ 'a-b-c'.rpartition('-') }} {{ 'prefix_x'.removeprefix('prefix_') }} {{ ' '.isspace() }} {{ 'abc'.islower() }}")
c("percent_format", "{{ '%s and %s'|format('a', 'b') }} {{ '%05.2f|%-4d|%x|%r'|format(3.14159, 42, 255, 'q') }} {{ '%s' % 5 }} {{ '%s-%s' % (1, 'b') }} {{ '%(a)s!' % {'a': 1} }} {{ '%d%%' % 50.7 }} {{ '%.2s' % 'abcdef' }}")
c("percent_format_missing_arg", "{{ '%s %s' % (1,) }}", None, "not enough arguments")
c("list_append_is_unsafe", "{% set l = [] %}{{ l.append(1) }}", None, "unsafe")
c("unsafe_attr_prints_empty", "[{{ [1, 2].append }}] {{ {}.update is defined }}")
# --- filters
c("tojson_variants", "{{ d|tojson }} {{ d|tojson(indent=2) }} {{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ {'a': [1, {'c': 'é'}]}|tojson(separators=(',', ':')) }} {{ 'é'|tojson(ensure_ascii=true) }} {{ '😀'|tojson(true) }} {{ 1.0|tojson }} {{ none|tojson }} {{ [true, false]|tojson }} {{ []|tojson(indent=2) }} {{ {}|tojson }}")
c("tojson_escapes", "{{ {'a': 'x\"y\\\\z\\n\\t\\u0001\\u2028\\x7f</>&'}|tojson }}")
c("tojson_undefined_fails", "{{ nope|tojson }}", None, "not JSON serializable")
c("tojson_nested_indent", "{{ {'a': {'b': [1, [2, {}]], 'c': {}}}|tojson(indent=3) }}")
c("sequence_filters", "{{ 'abc'|list }} {{ 'abc'|first }} {{ [1, 2]|last }} [{{ []|first }}] {{ [3, 1, 2]|max }} {{ [3, 1, 2]|min }} {{ ['a', 'b']|reverse|list }} {{ 'abc'|reverse }} {{ d|first }} {{ d|length }} {{ 'héllo'|length }} {{ msgs|count }}")
c("batch", "{{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|batch(2, 'x')|list }}")
c("indent_center_escape", "{{ 'a\\nb\\nc'|indent(4) }}|{{ 'a\\nb'|indent(first=true) }}|{{ '  a\\n b\\n\\nc'|indent(2) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|{{ 'x'|indent('>>', true) }}|{{ ' x '|center(9) }}|{{ \"a'b\"|e }}|{{ '<a href=\"x\">&'|escape }}|{{ 5|safe }}")
c("number_filters", "{{ 42|string }} {{ 4.0|int }} {{ '42'|int + 1 }} {{ 'x'|int }} {{ '3.5'|int }} {{ '3.5'|float }} {{ 3|float }} {{ -4|abs }} {{ -4.5|abs }} {{ 'x'|float }} {{ ' 7 '|int }} {{ none|int }} {{ true|int }}")
c("round_filter", "{{ 3.7|round }} {{ 3.14159|round(2) }} {{ 3.14159|round(2, 'floor') }} {{ 3.1|round(0, 'ceil') }} {{ 2.5|round }} {{ 3.5|round }} {{ 3|round }} {{ 2.675|round(2) }} {{ 1234.5|round(-2) }}")
c("dictsort_unique_sum", "{{ {'b': 2, 'a': 1, 'C': 0}|dictsort }} {{ {'b': 2, 'a': 1}|dictsort(by='value', reverse=true) }} {{ [1, 1, 2, 'a', 'A']|unique|list }} {{ ['a', 'A']|unique(case_sensitive=true)|list }} {{ [1, 2, 3]|sum }} {{ [{'v': 1}, {'v': 2}]|sum(attribute='v') }} {{ [[1], [2]]|sum(start=[]) }}")
c("sort_filter", "{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ ['b', 'A', 'a']|sort }} {{ ['b', 'A', 'a']|sort(case_sensitive=true) }} {{ [{'n': 'b'}, {'n': 'a'}]|sort(attribute='n') }} {{ [{'a': 1, 'b': 2}, {'a': 1, 'b': 1}]|sort(attribute='a,b') }}")
c("map_select", "{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }} {{ msgs|map(attribute='role')|list }} {{ msgs|rejectattr('role', '==', 'user')|list|length }} {{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} {{ ['a', 'b']|map('upper')|list }} {{ [0, 1, '', 'x']|select|list }} {{ [{'a': 1}, {}]|map(attribute='a', default='z')|list }} {{ [{'a': {'b': 5}}]|map(attribute='a.b')|list }}")
c("selectattr_truthy", "{{ [{'x': 1}, {'x': 0}, {'y': 2}]|selectattr('x')|list }}")
c("join_attribute", "{{ [1, 2.5, 'x', none, true]|join(',') }} {{ [{'n': 'a'}, {'n': 'b'}]|join('-', attribute='n') }}")
c("wordcount_title", "{{ 'Hello World foo'|wordcount }} {{ 'hello world'|title }} {{ 'héllo wörld_x 42'|wordcount }}")
c("items_filter", "{{ d|items|list }} {{ nope|items|list }}")
c("items_on_non_mapping", "{{ [1]|items|list }}", None, "mapping")
c("attr_filter", "{{ d|attr('a') }}|{{ ns_like|attr('x') }}", {"d": {"a": 1}, "ns_like": {"x": 2}})
c("min_max_attr", "{{ [{'v': 3}, {'v': 1}]|min(attribute='v') }} {{ ['b', 'A']|max }} {{ []|max }}")
c("replace_filter", "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 1) }}")
c("generator_truthy_and_once", "{% set users = msgs|selectattr('role', 'equalto', 'nobody') %}{{ 'truthy' if users else 'falsy' }} {% set g = msgs|map(attribute='role') %}{% for r in g %}{{ r }},{% endfor %}|{% for r in g %}{{ r }},{% endfor %}|{{ g|list }}")
c("generator_in_consumes", "{% set g = [1, 2, 3]|select %}{{ 2 in g }} {{ g|list }} {% set h = [1, 2]|map('string') %}{{ h|first }} {{ h|list }}")
c("generator_has_no_length", "{{ [1, 2]|select|length }}", None, "has no len()")
c("generator_not_indexable", "[{{ ([1, 2]|select)[0] }}] {{ [1, 2]|reverse|list }} {{ 'ab'|reverse }} {{ ([1, 2]|select|reverse)|list }}")
c("indent_needs_string", "{{ 5|indent }}", None, "unsupported operand")
# --- tests
c("type_tests", "{{ x is defined }} {{ n is none }} {{ s is string }} {{ d is mapping }} {{ d.b is sequence }} {{ 3 is number }} {{ true is number }} {{ 3 is integer }} {{ true is integer }} {{ 3.5 is float }} {{ true is boolean }} {{ false is false }} {{ true is true }} {{ 1 is true }} {{ 1 is iterable }} {{ 'a' is iterable }} {{ msgs is callable }} {{ range is callable }}")
c("value_tests", "{{ 6 is divisibleby(3) }} {{ 6 is divisibleby 4 }} {{ 5 is even }} {{ 5 is odd }} {{ 'x' is in 'xyz' }} {{ 3 is lt 4 }} {{ 3 is ge 4 }} {{ none is sameas none }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ 2 is eq 2.0 }} {{ 2 is ne 2 }} {{ 1 is equalto 1 }} {{ x is not none }}")
# --- errors
c("syntax_unknown_tag", "{% frobnicate %}", None, "unknown tag 'frobnicate'")
c("syntax_unclosed_if", "{% if true %}x", None, "unexpected end of template")
c("syntax_stray_endfor", "x{% endfor %}", None, "unexpected 'endfor'")
c("syntax_bad_expression", "{{ 1 + }}", None, "expected an expression")
c("syntax_unterminated_string", "{{ 'abc }}", None, "unterminated string")
c("syntax_unclosed_var", "{{ x ", None, "missing '}}'")
c("syntax_break_outside_loop", "{% break %}", None, "outside of a loop")
c("syntax_include_unsupported", "{% include 'x.j2' %}", None, "not supported")
c("unknown_filter", "{{ 1|frob }}", None, "no filter named 'frob'")
c("unknown_test", "{{ 1 is frob }}", None, "no test named 'frob'")
c("type_error_concat", "{{ 'a' + 1 }}", None, "can only concatenate str")
c("type_error_order", "{{ 1 < 'a' }}", None, "not supported between instances")
c("zero_division", "{{ 1 / 0 }}", None, "division by zero")
c("not_callable", "{{ s() }}", None, "not callable")
c("iterate_int", "{% for i in 5 %}{% endfor %}", None, "not iterable")
c("none_concat", "{{ n + 'x' }}", None, "unsupported operand")


# Must match kDefaultContext in src/chat/chat_test_util.h.
DEFAULT = {"x": -3, "d": {"a": 1, "b": [1, 2]}, "s": "Hello World", "n": None,
           "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}


def escaped(s):
    """An ordinary C++ literal, octal-escaping bytes that raw strings would not keep intact."""
    out = '"'
    for b in s.encode("utf-8"):
        ch = chr(b)
        if ch == "\\":
            out += "\\\\"
        elif ch == '"':
            out += '\\"'
        elif ch == "\n":
            out += "\\n"
        elif 0x20 <= b < 0x7F:
            out += ch
        else:
            out += "\\%03o" % b
    return out + '"'


def cstr(s):
    """A raw string literal when it survives editors and compilers unchanged, else escaped()."""
    risky = ("\r" in s or "\t" in s or " \n" in s or s.endswith(" ") or
             any((ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) < 0xA0 or ch in "\u00a0\u200b\u2028\u3000\u2003"
                 for ch in s))
    if risky:
        return escaped(s)
    for delim in ("J", "JJ", "X"):
        if ")" + delim + '"' not in s:
            return 'R"' + delim + "(" + s + ")" + delim + '"'
    raise ValueError(f"no raw-string delimiter fits {s!r}")


def main():
    env = render_jinja.make_env()
    out = [
        "// Generated by src/chat/tools/gen_jinja_cases.py; edit the cases there and rerun it.",
        "// Feature cases for the template engine: {name, template, context JSON (nullptr = kDefaultContext),",
        "// expected output (nullptr = must fail), substring of our error message}.",
        "// Expected outputs are what Python's jinja2, configured as transformers configures it, renders;",
        "// ChatCompare.FeatureCaseExpectationsMatchJinja2 re-checks every one against jinja2.",
    ]
    for name, t, ctx, err in C:
        try:
            rendered, ok = env.from_string(t).render(**copy.deepcopy(DEFAULT if ctx is None else ctx)), True
        except Exception as e:
            rendered, ok = f"{type(e).__name__}: {e}", False
        if ok and err:
            sys.exit(f"{name}: expected an error, jinja2 rendered {rendered!r}")
        if not ok and not err:
            sys.exit(f"{name}: jinja2 failed: {rendered}")
        expected = cstr(rendered) if ok else "nullptr"
        ctx_text = "nullptr" if ctx is None else cstr(json.dumps(ctx, ensure_ascii=False))
        out.append(f'{{"{name}", {cstr(t)},\n {ctx_text}, {expected}, {cstr(err) if err else "nullptr"}}},')
    with open(os.path.join(HERE, "..", "jinja_cases.inc"), "w") as f:
        f.write("\n".join(out) + "\n")
    print(len(C), "cases")


main()
