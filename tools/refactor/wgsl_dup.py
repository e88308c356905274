# Share of WGSL code lines (non-blank, not comment-only, whitespace-trimmed) that lie in a run of
# 6 consecutive code lines which occurs exactly (as a 6-line window) somewhere else in shaders/.
import os, sys, collections
root = sys.argv[1] if len(sys.argv) > 1 else 'shaders'
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.wgsl'):
            p = os.path.join(d, f)
            lines = [l.strip() for l in open(p)]
            files[p] = [l for l in lines if l and not l.startswith('//')]
W = 6
win = collections.defaultdict(list)
for p, ls in files.items():
    for i in range(len(ls) - W + 1):
        win[tuple(ls[i:i+W])].append((p, i))
total = sum(len(ls) for ls in files.values())
dup = 0
for p, ls in files.items():
    mark = [False] * len(ls)
    for i in range(len(ls) - W + 1):
        if len(win[tuple(ls[i:i+W])]) > 1:
            for j in range(i, i + W):
                mark[j] = True
    dup += sum(mark)
print(f"{dup} of {total} WGSL code lines ({100*dup/total:.1f}%) in 6-line runs repeated elsewhere; {len(files)} files")
