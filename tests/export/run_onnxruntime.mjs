// Runs an exported model in onnxruntime (npm onnxruntime-node, CPU): node run_onnxruntime.mjs
// MODEL.onnx INPUT.f32 N C H W OUTPUT.f32 writes the "probabilities" output as little-endian
// float32 [N, K], and prints the model's input and output names and its metadata as JSON.
import { readFileSync, writeFileSync } from "node:fs";
import ort from "onnxruntime-node";

const [model, input, n, c, h, w, output] = process.argv.slice(2);
const dims = [n, c, h, w].map(Number);
const bytes = readFileSync(input);
const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const session = await ort.InferenceSession.create(model, { executionProviders: ["cpu"] });
const result = await session.run({ image: new ort.Tensor("float32", data, dims) });
const probabilities = result.probabilities.data;
writeFileSync(output, Buffer.from(probabilities.buffer, probabilities.byteOffset, probabilities.byteLength));
console.log(JSON.stringify({ inputs: session.inputNames, outputs: session.outputNames,
                             dims: result.probabilities.dims }));
