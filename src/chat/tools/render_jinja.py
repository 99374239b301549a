#!/usr/bin/python3
"""Reference renderer for the chat-template tests: renders a template with
Python's jinja2 configured exactly as transformers' apply_chat_template does
(transformers/utils/chat_template_utils.py, _compile_jinja_template).

stdin:  {"template": "...", "contexts": [{...variables...}, ...]}
        or {"jobs": [{"template": "...", "context": {...}}, ...]}
stdout: [{"ok": true, "text": "..."} or {"ok": false, "error": "Type: message"}, ...], one per
        context or job, in order.

Exit status 3 when jinja2 is missing, so the C++ test can say so plainly.
"""
import json
import sys
from datetime import datetime

try:
    import jinja2
    import jinja2.ext
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError as e:  # pragma: no cover - reported by the C++ test
    sys.stderr.write(f"render_jinja.py: jinja2 is not importable ({e}); install python3-jinja2\n")
    sys.exit(3)


class GenerationTag(Extension):
    """transformers' AssistantTracker without the tracking: {% generation %}
    renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces jinja's tojson (which HTML-escapes) with plain json.dumps.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, template, context, cache={}):
    try:
        if template not in cache:  # compiling dominates; contexts share a template
            cache[template] = env.from_string(template)
        return {"ok": True, "text": cache[template].render(**context)}
    except Exception as e:  # syntax and runtime errors alike
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def main():
    req = json.load(sys.stdin)
    env = make_env()
    if "jobs" in req:
        results = [render(env, job["template"], job["context"]) for job in req["jobs"]]
    else:
        results = [render(env, req["template"], ctx) for ctx in req["contexts"]]
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
