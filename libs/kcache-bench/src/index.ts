/** Benchmarks and quality evaluation of the engine; each has its own command (`npm run bench:*`, `eval:*`). */
export { describeMachine, MachineInfo } from './bench/machine-info';
