// Tokenizer benchmark helpers (driven by bench/tokenizer.sh).
//   node tokenizer_bench.js mktext ROOT OUT   ~1 MB mixed text: English prose (data/prompt.txt),
//        C source (src/tokenizer/*.c) and generated multilingual/emoji/digit text (the
//        differential test's generator, fixed seed), interleaved in 4 KB chunks.
//   node tokenizer_bench.js hf DIR FILE REPS  Hugging Face `tokenizers` (npm): load time of
//        DIR/tokenizer.json (Tokenizer.fromFile) and best of REPS encodes of FILE in one call (add_special on).
'use strict';
const fs = require('fs');
const path = require('path');
const {execFileSync} = require('child_process');

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'mktext') {
    const root = a;
    const prose = fs.readFileSync(path.join(root, 'data/prompt.txt'), 'utf8');
    const dir = path.join(root, 'src/tokenizer');
    const code = fs.readdirSync(dir).filter((f) => f.endsWith('.c')).sort()
                     .map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('\n');
    const gen = execFileSync('node', [path.join(root, 'tests/e2e/tokenizer_diff.js'), 'gen', '7', '1500'],
                             {maxBuffer: 1 << 28}).toString().split('\n').filter((l) => l)
                    .map((l) => JSON.parse(l)).join('\n');
    const srcs = [[prose, 0.4], [code, 0.3], [gen, 0.3]];
    const target = 1 << 20;
    const parts = srcs.map(([s, share]) => {
        let t = '';
        while (Buffer.byteLength(t) < target * share) t += s + '\n';
        return t;
    });
    const pos = [0, 0, 0];
    let out = '', k = 0;
    while (Buffer.byteLength(out) < target && pos.some((p, i) => p < parts[i].length)) {
        const i = k++ % 3;
        if (pos[i] >= parts[i].length) continue;
        let end = Math.min(parts[i].length, pos[i] + 4096);
        out += parts[i].slice(pos[i], end);
        pos[i] = end;
    }
    fs.writeFileSync(b, out);
} else if (mode === 'hf') {
    const {Tokenizer} = require('tokenizers');
    // load time: Tokenizer.fromFile on the file itself (all in Rust)
    const t0 = process.hrtime.bigint();
    Tokenizer.fromFile(path.join(a, 'tokenizer.json'));
    const load = Number(process.hrtime.bigint() - t0) * 1e-9;
    // encode with the transformers view of the file that genbench uses (LlamaTokenizer rebuild)
    const {transformersView} = require(path.join(__dirname, '../tests/e2e/tokenizer_diff.js'));
    const json = transformersView(a, JSON.parse(fs.readFileSync(path.join(a, 'tokenizer.json'), 'utf8')));
    const t = Tokenizer.fromString(JSON.stringify(json));
    const text = fs.readFileSync(b, 'utf8');
    const bytes = Buffer.byteLength(text);
    (async () => {
        let best = 1e30, n = 0;
        for (let r = 0; r < parseInt(c, 10); r++) {
            const s = process.hrtime.bigint();
            const e = await t.encode(text, null, {addSpecialTokens: true});
            const dt = Number(process.hrtime.bigint() - s) * 1e-9;
            n = e.getIds().length;
            if (dt < best) best = dt;
        }
        console.log(JSON.stringify({load_s: +load.toFixed(4), bytes, tokens: n,
                                    encode_s: +best.toFixed(4), mb_per_s: +(bytes / best / 1e6).toFixed(2)}));
    })();
} else {
    console.error('usage: tokenizer_bench.js mktext ROOT OUT | hf DIR FILE REPS');
    process.exit(2);
}
