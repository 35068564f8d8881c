// Run in a child process by kernels.test.ts: prints describeBackends() as JSON, or the error.
import { describeBackends } from '../../src/ml/backend.js';
import * as tf from '@tensorflow/tfjs';

try {
  const d = await describeBackends();
  process.stdout.write(JSON.stringify({ ...d, tf: tf.getBackend() }));
} catch (e) {
  process.stdout.write(JSON.stringify({ error: (e as Error).message, kind: (e as { kind?: string }).kind }));
}
