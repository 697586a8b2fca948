import json, struct, collections, sys
from safetensors import _safetensors_rust as r
data = open(sys.argv[1] + '/cases.bin','rb').read(); ours = json.load(open(sys.argv[1] + '/ours.json'))
pos = 0; i = 0; stats = collections.Counter(); examples = collections.defaultdict(list)
while pos < len(data):
    n = struct.unpack_from('<I', data, pos)[0]; buf = data[pos+4:pos+4+n]; pos += 4 + n
    try:
        r.deserialize(buf); ref = 1; msg = ''
    except Exception as e:
        ref = 0; msg = str(e)[:120]
    key = (ours[i], ref); stats[key] += 1
    if ours[i] != ref and len(examples[key]) < 4:
        hl = struct.unpack_from('<Q', buf, 0)[0] if len(buf) >= 8 else -1
        examples[key].append((msg, buf[8:8+min(hl, 300)] if hl >= 0 else buf, len(buf)))
    i += 1
print('(ours, ref): count', dict(stats))
for k, v in examples.items():
    print('==', k)
    for m, h, L in v: print(' ', m, '|', h[:300], L)
