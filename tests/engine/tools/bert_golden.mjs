// Runs llama.cpp (node-llama-cpp, prebuilt CPU binaries, offline) on the seeded random BERT
// models written by make_bert_gguf and writes the golden file bert_golden_test.cc reads.
//
//   node bert_golden.mjs OUT.json SPEC.json
// SPEC.json: {"generator": {...}, "models": [{"name": "f32_cls", "path": "...", "fnv1a64": "..."}]}
// Called by bert_golden.sh; NODE_LLAMA_CPP_DIR is bench/engine/node/node_modules (absolute).
import fs from "node:fs";

const [outPath, specPath] = process.argv.slice(2);
const spec = JSON.parse(fs.readFileSync(specPath, "utf8"));
const nlcDir = process.env.NODE_LLAMA_CPP_DIR;
const { getLlama } = await import(nlcDir + "/node-llama-cpp/dist/index.js");
const nlcVersion = JSON.parse(fs.readFileSync(nlcDir + "/node-llama-cpp/package.json", "utf8")).version;
const llamaCppRelease = JSON.parse(
  fs.readFileSync(nlcDir + "/node-llama-cpp/llama/llama.cpp.info.json", "utf8")).tag;

const longText =
  "Retrieval-augmented generation combines a search index with a language model: the system " +
  "first finds the passages most relevant to a question, then asks the model to answer using " +
  "only those passages, citing each one. Good retrieval matters more than a bigger model. " +
  "Documents are split into chunks of a few hundred tokens, each chunk is embedded into a " +
  "vector, and the vectors are stored in an index that supports fast nearest-neighbour search. " +
  "At query time the question is embedded the same way, the closest chunks are fetched, a " +
  "cross-encoder reranks them, and permissions are checked so that every user sees only what " +
  "they may. Hybrid search adds BM25 keyword scores to catch exact names, codes and numbers " +
  "that dense vectors blur, and the two rankings are fused before reranking. Connectors keep " +
  "the index fresh by following change feeds from mail, drives and intranet sites, resuming " +
  "from checkpoints after a crash, and agents call the search as a tool over MCP.";

export const texts = [
  "hello world",
  "a",
  "The quick brown fox jumps over the lazy dog.",
  "Wait... what?! (No way) -- it's $3.50, isn't it? #tags @user 100% [ok] {yes} <no>",
  "Café crème brûlée à la française; naïve résumé, Ångström über Straße, São Paulo, Zürich",
  "東京は日本の首都です。北京欢迎你！한국어 텍스트",
  "GPU H200 has 141GB HBM3e; RAG-backend v1.2.3 released 2024-05-01 at 09:30 UTC",
  "tabs\tand\nnewlines   and   spaces, emoji 😀 and symbols © ® ™ ±",
  "for (int i = 0; i < n; ++i) { sum += x[i] * w[i]; } // dot product",
  longText,
  "UPPER lower MiXeD CamelCaseWords and hyphenated-compound-words",
];

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const out = {
  note: "Golden embeddings from llama.cpp for tests/engine/bert_golden_test.cc; regenerate with " +
        "tests/engine/tools/bert_golden.sh. Vectors are L2-normalised, 7 significant digits.",
  node_llama_cpp_version: nlcVersion,
  llama_cpp_release: llamaCppRelease,
  generator: spec.generator,
  texts: [],
  models: {},
};
const round = (x) => Number(x.toPrecision(7));
let tokensDone = false;
for (const m of spec.models) {
  const model = await llama.loadModel({ modelPath: m.path, gpuLayers: 0,
                                        defaultContextFlashAttention: false });
  const ctx = await model.createEmbeddingContext({ contextSize: 512, batchSize: 512, threads: 2 });
  const vectors = [];
  for (const text of texts) {
    if (!tokensDone) {
      // What getEmbeddingFor evaluates: the text's tokens without specials, then [CLS] ... [SEP].
      const ids = [...model.tokenize(text, false)];
      if (ids[0] !== model.tokens.bos) ids.unshift(model.tokens.bos);
      if (ids.at(-1) !== model.tokens.sep) ids.push(model.tokens.sep);
      out.texts.push({ text, tokens: ids });
    }
    const e = await ctx.getEmbeddingFor(text);
    const v = [...e.vector];
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    vectors.push(v.map((x) => round(x / norm)));
  }
  tokensDone = true;
  out.models[m.name] = { dtype: m.dtype, pooling: m.pooling, fnv1a64: m.fnv1a64, vectors };
  await ctx.dispose();
  await model.dispose();
}
fs.writeFileSync(outPath, JSON.stringify(out) + "\n");
console.log(`wrote ${outPath}: ${texts.length} texts, models ${Object.keys(out.models).join(", ")}`);
