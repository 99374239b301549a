# Rewrites a .cu file so the host compiler can build it against cuda_emu.h:
# dynamic shared memory becomes a pointer from the emulator, and every
# kernel<<<grid, block, smem, stream>>>(args) launch becomes
# emu::launch(grid, block, smem, <lambda calling kernel>, args). Only the
# constructs this folder's kernels use are handled.
import re, sys, os
src, dst = sys.argv[1], sys.argv[2]
s = open(src).read()
s = re.sub(r'extern __shared__ (\w+) (\w+)\[\];', r'\1* \2 = (\1*)emu::dyn_smem();', s)
out = []; i = 0
while True:
    j = s.find('<<<', i)
    if j < 0: out.append(s[i:]); break
    # kernel expression: walk back over identifier and template args
    k = j
    depth = 0
    while k > 0:
        c = s[k-1]
        if c == '>': depth += 1
        elif c == '<': depth -= 1
        elif depth == 0 and not (c.isalnum() or c in '_:'): break
        k -= 1
    kern = s[k:j]
    e = s.find('>>>', j)
    cfg = s[j+3:e]
    # args: balanced parens after >>>
    assert s[e+3] == '(', s[e:e+20]
    p = e + 4; depth = 1
    while depth:
        if s[p] == '(': depth += 1
        elif s[p] == ')': depth -= 1
        p += 1
    args = s[e+4:p-1]
    # split cfg at top-level commas
    parts = []; d = 0; cur = ''
    for ch in cfg:
        if ch in '(<': d += 1
        if ch in ')>': d -= 1
        if ch == ',' and d == 0: parts.append(cur); cur = ''
        else: cur += ch
    parts.append(cur)
    while len(parts) < 3: parts.append('0')
    out.append(s[i:k])
    out.append(f'emu::launch(dim3({parts[0]}), dim3({parts[1]}), size_t({parts[2]}), [](auto... xs) {{ {kern}(xs...); }}' + (f', {args})' if args.strip() else ')'))
    i = p
s = ''.join(out)
open(dst, 'w').write(s)

# WMMA needs 32-byte aligned shared arrays; the attribute must follow the declarator.
s = open(dst).read()
s = re.sub(r'__shared__ __align__\((\d+)\) (\w+) (\w+)\[([^\]]+)\];', r'__shared__ \2 \3[\4] __attribute__((aligned(\1)));', s)
open(dst, 'w').write(s)
