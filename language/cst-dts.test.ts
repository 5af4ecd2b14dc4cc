import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { CST_DTS_PATH, cstDts } from './scripts/gen-cst-dts.ts';

it('cst.generated.d.ts matches the grammar (regenerate: npx tsx language/scripts/gen-cst-dts.ts)', () => {
  expect(readFileSync(CST_DTS_PATH, 'utf8')).toBe(cstDts());
});
