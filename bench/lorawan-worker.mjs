// Worker entry: TypeScript needs tsx's loader inside the worker too.
import { register } from 'tsx/esm/api';

register();
await import('./lorawan-worker.ts');
