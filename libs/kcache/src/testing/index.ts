/** Test helpers: reference data beside the checkout (model files, oracle outputs). Loads no onnxruntime. */
export { OracleRecord, OracleStep, loadGreedyOracle, repoRoot, sharedDir, stories260kDir } from './reference-data';
