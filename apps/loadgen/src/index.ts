export * from './load/closed-loop';
export * from './load/latency-summary';
export * from './load/load-command';
export * from './load/load-options';
export * from './load/load-report';
export * from './load/prompt-sampler';
export * from './load/timed-stream';
export * from './demo/demo-command';
