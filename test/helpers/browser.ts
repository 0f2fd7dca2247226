// The system Chromium for the browser tests: Playwright's own download cannot run here, and is not needed.

import { existsSync } from 'node:fs';

const USUAL_PLACES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/snap/bin/chromium', '/usr/bin/google-chrome'];

/** CHROMIUM_PATH if set (it must exist), else the first usual place that exists, else null. */
export function findChromium(): string | null {
  const chosen = process.env.CHROMIUM_PATH;
  if (chosen) {
    if (!existsSync(chosen)) throw new Error(`CHROMIUM_PATH=${chosen}: expected a Chromium binary there, found no file`);
    return chosen;
  }
  return USUAL_PLACES.find((place) => existsSync(place)) ?? null;
}

/** CI sets CI=true; there the browser tests must run, not skip. */
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
