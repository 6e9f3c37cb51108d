// Differential tokenizer test, node side (driven by tokenizer_diff.sh).
//
//   node tokenizer_diff.js gen SEED COUNT > cases.jsonl
//       deterministic random strings, one JSON string per line
//   node tokenizer_diff.js unicode-tables
//       prints the data of src/tokenizer/tok_unicode9.h (slow: probes every code point)
//   node tokenizer_diff.js variants ROOT OUTDIR
//       writes synthetic tokenizers (bundled files with other components) and prints their names
//   node tokenizer_diff.js check TOKENIZER_DIR cases.jsonl ours.jsonl
//       runs Hugging Face `tokenizers` (npm, Rust core) on every case and compares ids (without
//       and with special tokens) and both decodes with genbench's output; prints every
//       mismatching string and exits 1 if there is any.
//
// transformers 5 rebuilds the pipeline of LlamaTokenizer (SentencePiece-style files): the
// oracle applies the same rebuild to the JSON (see transformersView), written from transformers'
// tokenization_llama.py, so that both sides tokenize like the benchmark does.
//
// Unicode versions: `tokenizers` mixes Unicode 9 tables (its NFC/NFD/NFKC/NFKD and
// StripAccents), Rust std's Unicode 17 (Lowercase, Digits) and Oniguruma's Unicode 15/16 (regex
// \p{L} / \p{N}); genbench has utf8proc 2.8 (Unicode 15) and PCRE2 10.42 (Unicode 14). genbench
// carries tables of the differences, so no character class is excluded here:
//  - normalizers: src/tokenizer/tok_unicode9.h, printed by the `unicode-tables` mode below;
//  - regex: the letters/numbers of POST_U14 (below) are added to \p{L} / \p{N} in
//    src/tokenizer/tok_regex.c. They were found by classifying every code point with both
//    engines (PCRE2: ^\p{L}$, ^\p{N}$ and genbench's \s set; `tokenizers`: a Split
//    pre-tokenizer per class); all 9,392 differing code points are unassigned in Unicode 14
//    and \s agrees everywhere. The generator draws them on purpose (chunk 'post_u14');
//  - Lowercase and Digits: tables in tok_normalizer.c / tok_pretokenizer.c.
'use strict';
const fs = require('fs');

// ---------- deterministic generator ----------
const POST_U14 = [[0x1c89, 0x1c8a], [0xa7cb, 0xa7cd], [0xa7da, 0xa7dc], [0x105c0, 0x105f3],
    [0x10d40, 0x10d49], [0x10d4a, 0x10d65], [0x10d6f, 0x10d85], [0x10ec2, 0x10ec4],
    [0x1123f, 0x11240], [0x11380, 0x11389], [0x1138b, 0x1138b], [0x1138e, 0x1138e],
    [0x11390, 0x113b5], [0x113b7, 0x113b7], [0x113d1, 0x113d1], [0x113d3, 0x113d3],
    [0x116d0, 0x116e3], [0x11bc0, 0x11be0], [0x11bf0, 0x11bf9], [0x11f02, 0x11f02],
    [0x11f04, 0x11f10], [0x11f12, 0x11f33], [0x11f50, 0x11f59], [0x1342f, 0x1342f],
    [0x13441, 0x13446], [0x13460, 0x143fa], [0x16100, 0x1611d], [0x16130, 0x16139],
    [0x16d40, 0x16d6c], [0x16d70, 0x16d79], [0x18cff, 0x18cff], [0x1b132, 0x1b132],
    [0x1b155, 0x1b155], [0x1ccf0, 0x1ccf9], [0x1d2c0, 0x1d2d3], [0x1df25, 0x1df2a],
    [0x1e030, 0x1e06d], [0x1e4d0, 0x1e4eb], [0x1e4f0, 0x1e4f9], [0x1e5d0, 0x1e5ed],
    [0x1e5f0, 0x1e5f0], [0x1e5f1, 0x1e5fa], [0x2b739, 0x2b739], [0x2ebf0, 0x2ee5d],
    [0x31350, 0x323af]];

function rng(seed) {
    let s = seed >>> 0;
    return () => {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

// [first, last] code point ranges by kind (letters, marks, digits, symbols, ...).
const RANGES = {
    latin: [[0x41, 0x5a], [0x61, 0x7a], [0xc0, 0x24f], [0x1e00, 0x1eff]],
    ipa: [[0x250, 0x2af], [0x2b0, 0x2ff]],
    marks: [[0x300, 0x36f], [0x483, 0x489], [0x591, 0x5c7], [0x64b, 0x65f], [0x1ab0, 0x1aff],
            [0x1dc0, 0x1dff], [0x20d0, 0x20f0], [0xfe20, 0xfe2f], [0xd00, 0xd04], [0xd3b, 0xd3c]],
    post_u14: POST_U14,
    // characters `tokenizers`' Unicode 9 normalizers do not know (see tok_unicode9.h)
    newer_norm: [[0x8ca, 0x8d3], [0x1abf, 0x1add], [0x1df6, 0x1dfa], [0x32ff, 0x32ff],
                 [0xa7f1, 0xa7f4], [0x10781, 0x107ba], [0x11930, 0x11943], [0x11d3a, 0x11d47],
                 [0x1e030, 0x1e06d], [0x1fbf0, 0x1fbf9], [0x1f16a, 0x1f16c], [0x1cf00, 0x1cf46]],
    greek: [[0x370, 0x377], [0x37a, 0x37f], [0x384, 0x38a], [0x38c, 0x38c], [0x38e, 0x3a1],
            [0x3a3, 0x3ff], [0x1f00, 0x1f15]],
    cyrillic: [[0x400, 0x52f]],
    armenian: [[0x531, 0x556], [0x561, 0x587]],
    hebrew: [[0x5d0, 0x5ea], [0x5f0, 0x5f4]],
    arabic: [[0x600, 0x61c], [0x61e, 0x6ff], [0x750, 0x77f]],
    devanagari: [[0x900, 0x97f]],
    bengali: [[0x985, 0x98c], [0x995, 0x9a8], [0x9be, 0x9c4], [0x9e6, 0x9fb]],
    tamil: [[0xb85, 0xb8a], [0xb95, 0xb95], [0xbbe, 0xbc2], [0xbe6, 0xbfa]],
    thai: [[0xe01, 0xe3a], [0xe3f, 0xe5b]],
    georgian: [[0x10d0, 0x10fa]],
    hangul: [[0x1100, 0x11ff], [0xac00, 0xd7a3]],
    kana: [[0x3041, 0x3096], [0x3099, 0x30ff], [0x31f0, 0x31ff]],
    cjk: [[0x4e00, 0x9fd5], [0x3400, 0x4db5], [0x3000, 0x303f], [0xff01, 0xff60]],
    numbers: [[0x30, 0x39], [0x660, 0x669], [0x966, 0x96f], [0xff10, 0xff19], [0xb2, 0xb3],
              [0xb9, 0xb9], [0xbc, 0xbe], [0x2070, 0x2070], [0x2074, 0x2079], [0x2080, 0x2089],
              [0x2150, 0x2189], [0x2460, 0x249b], [0x2776, 0x2793], [0x1d7ce, 0x1d7ff]],
    symbols: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e], [0xa1, 0xbf], [0x2010, 0x2027],
              [0x2030, 0x205e], [0x20a0, 0x20be], [0x2100, 0x214f], [0x2190, 0x23fe],
              [0x2500, 0x27bf], [0x2900, 0x2b73]],
    math_alnum: [[0x1d400, 0x1d454], [0x1d456, 0x1d49c], [0x1d504, 0x1d505], [0x1d538, 0x1d539]],
    emoji: [[0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x1f680, 0x1f6d2], [0x1f910, 0x1f91e],
            [0x1f920, 0x1f927], [0x1f950, 0x1f95e], [0x1f980, 0x1f991], [0x2600, 0x26ff]],
    controls: [[0x0, 0x8], [0xe, 0x1f], [0x7f, 0x9f], [0xad, 0xad], [0x200b, 0x200f],
               [0x2060, 0x2064], [0xfeff, 0xfeff], [0xfff9, 0xfffd]],
    private_use: [[0xe000, 0xe0ff], [0xf0000, 0xf00ff]],
};
const WHITESPACE = [0x9, 0xa, 0xb, 0xc, 0xd, 0x20, 0x85, 0xa0, 0x1680, 0x180e, 0x2000, 0x2001,
                    0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
                    0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0x200b, 0xfeff];
const SPECIALS = ['<|endoftext|>', '<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>',
                  '<|start_header_id|>', '<|end_header_id|>', '<|reserved_special_token_7|>',
                  '<|im_start|>', '<|im_end|>', '<think>', '</think>', '<tool_call>',
                  '<|fim_prefix|>', '<|vision_pad|>', '<s>', '</s>', '<unk>', '<|im_', '<s',
                  '|>', '<|', '<<s>>', '<|endoftext|', 'endoftext', '<0x41>', '▁', '▁▁', 'Ġ'];
const WORDS = ['the', 'The', ' of', 'and', 'Hello', 'world', 'tokenizer', 'naïve', 'café',
               'Việt', ' jeho', 'straße', 'ΑΒΓ', 'привет', 'こんにちは', '中文', 'ﬁ', 'İstanbul',
               'x**2', 'def', 'return', '__init__', 'http://a.b/c?d=e', 'e\u0301', 'n\u0303',
               "'s", "'S", "'t", "'re", "'VE", "'m", "'ll", "'D", '\u2019s', "it'\u017f", "don't"];

// Prints the code points where `tokenizers`' normalizers disagree with ICU (Unicode 17) on
// a few probe strings (NFC/NFD/NFKC/NFKD), and the marks its StripAccents keeps: the data of
// src/tokenizer/tok_unicode9.h (which adds U+11930 and U+11935, parts of U+11938).
function unicodeTables() {
    const tk = require('tokenizers');
    const forms = [[tk.nfcNormalizer(), 'NFC'], [tk.nfdNormalizer(), 'NFD'],
                   [tk.nfkcNormalizer(), 'NFKC'], [tk.nfkdNormalizer(), 'NFKD']];
    const strip = tk.stripAccentsNormalizer();
    const unknown = [], kept = [];
    for (let c = 0x300; c < 0x110000; c++) {
        if (c >= 0xd800 && c <= 0xdfff) continue;
        const s = String.fromCodePoint(c);
        let bad = false;
        for (const p of [s, 'a\u0360' + s, 'a' + s + '\u0301', s + '\u0301', '\u1100\u1161' + s])
            for (const [n, form] of forms)
                if (!bad && n.normalizeString(p) !== p.normalize(form)) bad = true;
        if (bad) unknown.push(c);
        if (strip.normalizeString(s) !== s.replace(/\p{M}/gu, '')) kept.push(c);
    }
    const ranges = (a) => {
        const rs = [];
        for (const c of a) {
            if (rs.length && rs[rs.length - 1][1] === c - 1) rs[rs.length - 1][1] = c;
            else rs.push([c, c]);
        }
        return rs.map(([x, y]) => `${x.toString(16)}-${y.toString(16)}`).join(' ');
    };
    console.log(`norm_unknown ${ranges(unknown)}`);
    console.log(`not_marks ${ranges(kept)}`);
}

function gen(seed, count) {
    const r = rng(seed);
    const int = (a, b) => a + Math.floor(r() * (b - a + 1));
    const pick = (a) => a[Math.floor(r() * a.length)];
    const keys = Object.keys(RANGES);
    const cpFrom = (name) => {
        for (;;) {
            let c;
            if (name === 'anyplane') {
                c = r() < 0.5 ? int(0, 0x2ffff) : int(0, 0x10ffff);
                if (c >= 0xd800 && c <= 0xdfff) continue;
            } else {
                const [a, b] = pick(RANGES[name]);
                c = int(a, b);
            }
            return c;
        }
    };
    const chars = (name, n) => {
        let s = '';
        for (let i = 0; i < n; i++) s += String.fromCodePoint(cpFrom(name));
        return s;
    };
    const ws = (n) => {
        let s = '';
        const kind = r();
        for (let i = 0; i < n; i++)
            s += String.fromCodePoint(kind < 0.4 ? 0x20 : kind < 0.6 ? pick([0x20, 0xa, 0x9, 0xd])
                                                                     : pick(WHITESPACE));
        return s;
    };
    const chunk = () => {
        const k = r();
        if (k < 0.22) return chars(pick(keys), int(1, 12));
        if (k < 0.34) return pick(WORDS);
        if (k < 0.44) return ws(r() < 0.9 ? int(1, 6) : int(20, 300));
        if (k < 0.52) return chars('numbers', int(1, 20));
        if (k < 0.60) return pick(SPECIALS);
        if (k < 0.68) { // emoji sequences: ZWJ, skin tones, VS16
            let s = String.fromCodePoint(cpFrom('emoji'));
            if (r() < 0.3) s += String.fromCodePoint(int(0x1f3fb, 0x1f3ff));
            if (r() < 0.3) s += '\ufe0f';
            if (r() < 0.3) s += '\u200d' + String.fromCodePoint(cpFrom('emoji'));
            return s;
        }
        if (k < 0.72) return chars(pick(['latin', 'cyrillic', 'cjk', 'hangul', 'arabic']),
                                   r() < 0.8 ? int(30, 300) : int(1000, 3000));
        if (k < 0.76) return chars('controls', int(1, 4));
        if (k < 0.80) // marks after a letter, mixed with characters new since Unicode 9
            return chars('latin', 1) + chars('marks', int(0, 2)) + chars('newer_norm', int(0, 2)) +
                   chars('marks', int(0, 2));
        if (k < 0.88) return chars('anyplane', int(1, 12));
        if (k < 0.92) // letters/digits newer than PCRE2's tables next to old ones
            return chars('latin', int(0, 3)) + chars('post_u14', int(1, 4)) +
                   chars(pick(['numbers', 'latin', 'post_u14']), int(0, 3));
        // mixed soup: any range, any char
        let s = '';
        const n = int(1, 20);
        for (let i = 0; i < n; i++) s += chars(pick(keys), 1);
        return s;
    };
    const seps = ['', '', ' ', ' ', '\n', '  ', '\t', '\r\n', '\u00a0'];
    const out = [];
    for (let i = 0; i < count; i++) {
        let s = r() < 0.1 ? pick(seps) : '';
        const n = int(1, 8);
        for (let j = 0; j < n; j++) s += chunk() + pick(seps);
        out.push(JSON.stringify(s));
    }
    out.push(JSON.stringify(''), JSON.stringify(' '), JSON.stringify('\u0000'));
    // long texts (> 4 KB: genbench's per-call word cache is on) with many repeated words
    for (let i = 0; i < 3; i++) {
        let s = '';
        while (s.length < 6000) s += chunk() + pick(seps) + pick(WORDS) + ' ' + pick(WORDS) + pick(seps);
        out.push(JSON.stringify(s));
    }
    return out.join('\n') + '\n';
}

// ---------- oracle ----------
function transformersView(dir, tok) {
    // transformers 5 LlamaTokenizer.__init__: normalizer None, Metaspace pre-tokenizer with
    // prepend_scheme from add_prefix_space/legacy (tokenization_utils_base._get_prepend_scheme),
    // decoder Replace/ByteFallback/Fuse(+Strip), template from add_bos_token/add_eos_token.
    const cfgPath = `${dir}/tokenizer_config.json`;
    if (!fs.existsSync(cfgPath)) return tok;
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
    const cls = cfg.tokenizer_class;
    if (cls !== 'LlamaTokenizer' && cls !== 'LlamaTokenizerFast') return tok;
    if (JSON.stringify(tok.pre_tokenizer || null).includes('"ByteLevel"')) return tok;
    const content = (v) => (v && typeof v === 'object' ? v.content : v);
    const aps = cfg.add_prefix_space === undefined || cfg.add_prefix_space === null
                    ? true : cfg.add_prefix_space;
    const legacy = cfg.legacy === undefined || cfg.legacy === null ? false : cfg.legacy;
    const scheme = aps ? (legacy ? 'always' : 'first') : 'never';
    tok.normalizer = null;
    tok.pre_tokenizer = {type: 'Metaspace', replacement: '\u2581', prepend_scheme: scheme,
                         split: false};
    const decs = [{type: 'Replace', pattern: {String: '\u2581'}, content: ' '},
                  {type: 'ByteFallback'}, {type: 'Fuse'}];
    if (aps) decs.push({type: 'Strip', content: ' ', start: 1, stop: 0});
    tok.decoder = {type: 'Sequence', decoders: decs};
    const addBos = cfg.add_bos_token === undefined ? true : cfg.add_bos_token;
    const addEos = cfg.add_eos_token === undefined ? false : cfg.add_eos_token;
    const idOf = (t) => {
        const a = tok.added_tokens.find((x) => x.content === t);
        return a ? a.id : tok.model.vocab[t];
    };
    const single = [], specials = {};
    const bos = content(cfg.bos_token), eos = content(cfg.eos_token);
    if (addBos && bos) {
        single.push({SpecialToken: {id: bos, type_id: 0}});
        specials[bos] = {id: bos, ids: [idOf(bos)], tokens: [bos]};
    }
    single.push({Sequence: {id: 'A', type_id: 0}});
    if (addEos && eos) {
        single.push({SpecialToken: {id: eos, type_id: 0}});
        specials[eos] = {id: eos, ids: [idOf(eos)], tokens: [eos]};
    }
    tok.post_processor = {type: 'TemplateProcessing', single, pair: single, special_tokens: specials};
    return tok;
}

async function check(dir, casesPath, oursPath) {
    const {Tokenizer} = require('tokenizers');
    const json = transformersView(dir, JSON.parse(fs.readFileSync(`${dir}/tokenizer.json`, 'utf8')));
    const t = Tokenizer.fromString(JSON.stringify(json));
    const cases = fs.readFileSync(casesPath, 'utf8').split('\n').filter((l) => l.length);
    const ours = fs.readFileSync(oursPath, 'utf8').split('\n').filter((l) => l.length);
    if (cases.length !== ours.length) {
        console.log(`FAIL ${dir}: ${cases.length} cases but genbench printed ${ours.length} lines`);
        return 1;
    }
    let bad = 0;
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    for (let i = 0; i < cases.length; i++) {
        const text = JSON.parse(cases[i]);
        const o = JSON.parse(ours[i]);
        let ids, idsS, dec, decS, hfError = null;
        try {
            ids = Array.from((await t.encode(text, null, {addSpecialTokens: false})).getIds());
            idsS = Array.from((await t.encode(text, null, {addSpecialTokens: true})).getIds());
            dec = await t.decode(idsS, false);
            decS = await t.decode(idsS, true);
        } catch (e) {
            hfError = String(e);
        }
        const diffs = [];
        if (hfError || o.error) {
            // both refusing the input is agreement
            if (!hfError || !o.error) diffs.push(`hf error: ${hfError}; genbench error: ${o.error}`);
        } else {
            if (!same(o.ids, ids)) diffs.push(`ids: hf ${JSON.stringify(ids)} genbench ${JSON.stringify(o.ids)}`);
            if (!same(o.ids_with_special, idsS))
                diffs.push(`ids_with_special: hf ${JSON.stringify(idsS)} genbench ${JSON.stringify(o.ids_with_special)}`);
            // decodes of genbench's ids with HF's decoder would mix the two; compare only when
            // the ids agree, so every report points at one stage
            if (same(o.ids_with_special, idsS)) {
                if (o.decoded !== dec)
                    diffs.push(`decoded: hf ${JSON.stringify(dec)} genbench ${JSON.stringify(o.decoded)}`);
                if (o.decoded_skip_special !== decS)
                    diffs.push(`decoded_skip_special: hf ${JSON.stringify(decS)} genbench ${JSON.stringify(o.decoded_skip_special)}`);
            }
        }
        if (diffs.length) {
            bad++;
            if (bad <= 20) {
                console.log(`MISMATCH ${dir} case ${i + 1}: ${cases[i]}`);
                for (const d of diffs) console.log(`  ${d.length > 2000 ? d.slice(0, 2000) + '...' : d}`);
            }
        }
    }
    console.log(`${dir}: ${cases.length} strings, ${bad} mismatches`);
    return bad ? 1 : 0;
}


// ---------- synthetic variants: components the four bundled files do not use ----------
// Each is a bundled file with its pipeline replaced, written with a tokenizer_config.json that
// names no tokenizer class, so both sides read the JSON as it is.
function variants(root, outDir) {
    const load = (n) => JSON.parse(fs.readFileSync(`${root}/data/tokenizers/${n}/tokenizer.json`, 'utf8'));
    const out = {};
    const addTokens = (tok, list) => {
        let id = Math.max(...Object.values(tok.model.vocab), ...tok.added_tokens.map((a) => a.id)) + 1;
        for (const a of list) {
            if (a.content in tok.model.vocab) throw new Error(`variant token ${a.content} is in the vocab`);
            tok.added_tokens.push(Object.assign({id: id++, single_word: false, lstrip: false, rstrip: false,
                                                 normalized: false, special: false}, a));
        }
    };
    // 1. byte-level with NFKC + Lowercase, Digits + ByteLevel(add_prefix_space, GPT-2 regex),
    //    added tokens with lstrip / rstrip / single_word / normalized, BOS+EOS template.
    {
        const t = load('gpt2');
        t.normalizer = {type: 'Sequence', normalizers: [{type: 'NFKC'}, {type: 'Lowercase'}]};
        t.pre_tokenizer = {type: 'Sequence', pretokenizers: [
            {type: 'Digits', individual_digits: true},
            {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true}]};
        addTokens(t, [{content: '<mask>', lstrip: true, special: true},
                      {content: '[SEP]', rstrip: true, special: true},
                      {content: 'gb_word', single_word: true},
                      {content: 'κόσμε', normalized: true},
                      {content: '<s>', lstrip: true, rstrip: true, special: true}]);
        const eot = {id: '<|endoftext|>', ids: [50256], tokens: ['<|endoftext|>']};
        t.post_processor = {type: 'TemplateProcessing',
            single: [{SpecialToken: {id: '<|endoftext|>', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}},
                     {SpecialToken: {id: '<|endoftext|>', type_id: 0}}],
            pair: [{Sequence: {id: 'A', type_id: 0}}, {Sequence: {id: 'B', type_id: 1}}],
            special_tokens: {'<|endoftext|>': eot}};
        out['v-bytelevel'] = t;
    }
    // 2. Split with every behaviour (String and Regex, invert), Strip + Replace normalizers.
    {
        const t = load('qwen3');
        t.normalizer = {type: 'Sequence', normalizers: [
            {type: 'NFC'}, {type: 'Strip', strip_left: true, strip_right: true},
            {type: 'Replace', pattern: {Regex: '\\d{2,}'}, content: '#'},
            {type: 'Replace', pattern: {String: 'ab'}, content: 'ba'}]};
        t.pre_tokenizer = {type: 'Sequence', pretokenizers: [
            {type: 'Split', pattern: {String: ' '}, behavior: 'MergedWithNext', invert: false},
            {type: 'Split', pattern: {Regex: '[.,;:!?()-]+'}, behavior: 'Contiguous', invert: false},
            {type: 'Split', pattern: {Regex: '[aeiou]'}, behavior: 'MergedWithPrevious', invert: false},
            {type: 'Split', pattern: {Regex: 'q'}, behavior: 'Removed', invert: false},
            {type: 'Split', pattern: {Regex: '\\s+|\\p{L}{4}'}, behavior: 'Isolated', invert: true},
            {type: 'Digits', individual_digits: false},
            {type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false}]};
        out['v-split'] = t;
    }
    // 3. SentencePiece-style with Metaspace (prepend first, split), no byte fallback, unk per
    //    char, Metaspace decoder.
    {
        const t = load('llama2');
        t.normalizer = null;
        t.pre_tokenizer = {type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: true};
        t.model.byte_fallback = false;
        t.model.fuse_unk = false;
        t.decoder = {type: 'Sequence', decoders: [
            {type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: true},
            {type: 'Fuse'}]};
        out['v-metaspace'] = t;
    }
    // 4. Same with fused unknowns, prepend always, StripAccents after NFD, Strip decoders (never
    //    start and stop on one token: `tokenizers` panics when the two cuts cross).
    {
        const t = load('llama2');
        t.normalizer = {type: 'Sequence', normalizers: [{type: 'NFD'}, {type: 'StripAccents'}]};
        t.pre_tokenizer = {type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: false};
        t.model.byte_fallback = false;
        t.model.fuse_unk = true;
        t.decoder = {type: 'Sequence', decoders: [
            {type: 'Replace', pattern: {String: '\u2581'}, content: ' '},
            {type: 'Strip', content: ' ', start: 0, stop: 1}, {type: 'Fuse'},
            {type: 'Strip', content: ' ', start: 2, stop: 0}]};
        out['v-fuseunk'] = t;
    }
    // 5./6. continuing_subword_prefix and end_of_word_suffix: GPT-2's vocab and merges rewritten
    //    so that every non-initial piece carries "##" (resp. every final piece "</w>").
    const rewrite = (affix, mark) => {
        const t = load('gpt2');
        const v = t.model.vocab, nv = {};
        let id = 0;
        for (const k of Object.keys(v)) nv[k] = id++;
        for (const k of Object.keys(v)) nv[mark(k)] = id++;
        const merges = [];
        for (const m of t.model.merges) {
            const [a, b] = typeof m === 'string' ? m.split(' ') : m;
            merges.push([a, affix === 'prefix' ? mark(b) : b]);
            merges.push(affix === 'prefix' ? [mark(a), mark(b)] : [a, mark(b)]);
        }
        t.model.vocab = nv;
        t.model.merges = merges;
        t.added_tokens = [{id: id, content: '<|endoftext|>', single_word: false, lstrip: false,
                           rstrip: false, normalized: true, special: true}];
        t.post_processor = null;
        return t;
    };
    {
        const t = rewrite('prefix', (k) => '##' + k);
        t.model.continuing_subword_prefix = '##';
        t.decoder = null; // no decoder: tokens joined with spaces
        out['v-prefix'] = t;
    }
    {
        const t = rewrite('suffix', (k) => k + '</w>');
        t.model.end_of_word_suffix = '</w>';
        t.decoder = {type: 'BPEDecoder', suffix: '</w>'};
        out['v-suffix'] = t;
    }
    for (const [name, t] of Object.entries(out)) {
        fs.mkdirSync(`${outDir}/${name}`, {recursive: true});
        fs.writeFileSync(`${outDir}/${name}/tokenizer.json`, JSON.stringify(t));
        fs.writeFileSync(`${outDir}/${name}/tokenizer_config.json`, '{}');
    }
    console.log(Object.keys(out).join(' '));
}

module.exports = {gen, transformersView};
if (require.main === module) {
    const [mode, a, b, c] = process.argv.slice(2);
    if (mode === 'gen') {
        process.stdout.write(gen(parseInt(a, 10), parseInt(b, 10)));
    } else if (mode === 'unicode-tables') {
        unicodeTables();
    } else if (mode === 'variants') {
        variants(a, b);
    } else if (mode === 'check') {
        check(a, b, c).then((rc) => process.exit(rc), (e) => {
            console.log(`FAIL: ${e.stack || e}`);
            process.exit(1);
        });
    } else {
        console.error('usage: tokenizer_diff.js gen SEED COUNT | check DIR CASES OURS');
        process.exit(2);
    }
}
