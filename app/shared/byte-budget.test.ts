import { createByteBudget } from './byte-budget';

const tick = () => new Promise((r) => setImmediate(r));

test('grants while the bytes fit, queues the rest first come first served, and frees on release', async () => {
  const budget = createByteBudget(100);
  const a = await budget.acquire(60);
  const order: string[] = [];
  const b = budget.acquire(50).then((release) => (order.push('b'), release));
  const c = budget.acquire(10).then((release) => (order.push('c'), release)); // would fit, but b is first
  await tick();
  expect(order).toEqual([]);
  expect(budget.inUse).toBe(60);
  a();
  a(); // a second release changes nothing
  const releaseB = await b;
  const releaseC = await c;
  expect(order).toEqual(['b', 'c']);
  expect(budget.inUse).toBe(60);
  releaseB();
  releaseC();
  expect(budget.inUse).toBe(0);
});

test('a request larger than the whole budget is granted alone', async () => {
  const budget = createByteBudget(100);
  const small = await budget.acquire(1);
  let granted = false;
  const huge = budget.acquire(10_000).then((release) => ((granted = true), release));
  await tick();
  expect(granted).toBe(false);
  small();
  const release = await huge;
  expect(budget.inUse).toBe(100);
  expect(await Promise.race([budget.acquire(1).then(() => 'granted'), tick().then(() => 'waiting')])).toBe('waiting');
  release();
  expect(budget.inUse).toBe(1); // the waiting request got its byte
});

test('a grant given back in parts frees each part at once, and never more than was granted', async () => {
  const budget = createByteBudget(10);
  const release = await budget.acquire(6);
  let waiterGranted = false;
  const waiter = budget.acquire(6).then((r) => ((waiterGranted = true), r));
  release(1);
  await tick();
  expect([budget.inUse, waiterGranted]).toEqual([5, false]);
  release(1);
  await tick();
  expect([budget.inUse, waiterGranted]).toEqual([10, true]); // 4 left of the first grant, and the waiter's 6
  release(100); // more than is left: gives back the 4
  release(1);
  expect(budget.inUse).toBe(6);
  (await waiter)();
  expect(budget.inUse).toBe(0);
});
