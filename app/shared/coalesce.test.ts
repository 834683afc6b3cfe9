import { createCoalescer } from './coalesce';

test('units submitted together, and while a run is busy, share runs', async () => {
  const runs: number[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const submit = createCoalescer<number>({
    maxInFlight: 1,
    maxItems: 100,
    run: async (items) => {
      runs.push(items);
      if (runs.length === 1) await gate;
    },
  });
  const first = [submit([1]), submit([2, 3])]; // same turn: one run
  await new Promise((r) => setImmediate(r));
  const later = [submit([4]), submit([5])]; // while busy: wait, then one run
  release();
  await Promise.all([...first, ...later]);
  expect(runs).toEqual([[1, 2, 3], [4, 5]]);
});

test('maxItems splits batches but never a unit', async () => {
  const runs: number[][] = [];
  const submit = createCoalescer<number>({ maxInFlight: 1, maxItems: 3, run: async (items) => void runs.push(items) });
  await Promise.all([submit([1, 2]), submit([3, 4]), submit([5, 6, 7, 8])]);
  expect(runs).toEqual([[1, 2], [3, 4], [5, 6, 7, 8]]);
});

test('with isolateFailures only the unit that breaks a batch fails', async () => {
  const submit = createCoalescer<number>({
    maxInFlight: 1,
    maxItems: 100,
    isolateFailures: true,
    run: async (items) => {
      if (items.includes(13)) throw new Error('unlucky');
    },
  });
  const results = await Promise.allSettled([submit([1]), submit([13]), submit([2])]);
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
});

test('without isolateFailures a failed run fails all its units', async () => {
  const submit = createCoalescer<number>({ maxInFlight: 2, maxItems: 100, run: async () => Promise.reject(new Error('down')) });
  const results = await Promise.allSettled([submit([1]), submit([2])]);
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
});

test('with lingerMs a run waits for more units, unless maxItems are already waiting', async () => {
  const runs: { items: number[]; at: number }[] = [];
  const start = Date.now();
  const submit = createCoalescer<number>({ maxInFlight: 1, maxItems: 4, lingerMs: 40, run: async (items) => void runs.push({ items, at: Date.now() - start }) });
  const first = submit([1]);
  await new Promise((r) => setTimeout(r, 10));
  const second = submit([2]); // joins the lingering run
  await Promise.all([first, second]);
  expect(runs.map((r) => r.items)).toEqual([[1, 2]]);
  expect(runs[0].at).toBeGreaterThanOrEqual(35);

  const full = [submit([3, 4]), submit([5, 6])]; // maxItems waiting: runs at once
  await Promise.all(full);
  expect(runs[1].items).toEqual([3, 4, 5, 6]);
  expect(runs[1].at - runs[0].at).toBeLessThan(35);
});
