// Loaded with `node --import` into every node process of a benchmarked run
// (bench/bench.ts, when GNU time is missing): at exit each process raises the
// recorded peak RSS to its own if larger, so the file ends with the largest.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const file = process.env.BENCH_RESOURCE_FILE;
if (file) {
  process.on('exit', () => {
    const own = process.resourceUsage().maxRSS; // KiB
    const recorded = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).maxRSS : 0;
    if (own > recorded) writeFileSync(file, JSON.stringify({ maxRSS: own, pid: process.pid, argv: process.argv.slice(1) }));
  });
}
