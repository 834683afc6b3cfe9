import { createEndpointGate, MAX_LOCAL_WAIT_MS, type GateAnswer } from './endpoint-gate';

type Release = { release: () => void };
const isSlot = (a: GateAnswer): a is Release => 'release' in a;

describe('endpoint gate', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('lets `limit` attempts per endpoint through, independently for each endpoint', async () => {
    const gate = createEndpointGate({ limit: 2, random: () => 0.5 });
    expect(isSlot(await gate.acquire('a', 'j1'))).toBe(true);
    expect(isSlot(await gate.acquire('a', 'j2'))).toBe(true);
    expect(isSlot(await gate.acquire('b', 'j3'))).toBe(true);
  });

  it('hands a released slot straight to the first job waiting, in order', async () => {
    const gate = createEndpointGate({ limit: 1, random: () => 0.5 });
    gate.observe('a', 10); // fast endpoint: waiting is worth it
    const first = (await gate.acquire('a', 'j1')) as Release;
    const order: string[] = [];
    const second = gate.acquire('a', 'j2').then((a) => (order.push('j2'), a as Release));
    const third = gate.acquire('a', 'j3').then((a) => (order.push('j3'), a as Release));
    first.release();
    (await second).release();
    (await third).release();
    expect(order).toEqual(['j2', 'j3']);
    first.release(); // releasing twice does not free a second slot
    expect(isSlot(await gate.acquire('a', 'j4'))).toBe(true);
    const fifth = gate.acquire('a', 'j5');
    jest.advanceTimersByTime(MAX_LOCAL_WAIT_MS);
    expect(await fifth).toEqual({ retryInMs: expect.any(Number) });
  });

  it('parks a job whose wait would be long, and one that waited MAX_LOCAL_WAIT_MS in vain', async () => {
    const gate = createEndpointGate({ limit: 1, random: () => 0.5 });
    await gate.acquire('slow', 'j1'); // never released: a hanging endpoint
    // Unknown latency (assumed 250 ms): one extra job (limit × 1) waits, then gives up and parks.
    const waited = gate.acquire('slow', 'j2');
    jest.advanceTimersByTime(MAX_LOCAL_WAIT_MS);
    expect(await waited).toEqual({ retryInMs: expect.any(Number) });
    // The attempt in flight is older than a local wait: no more waiting, straight to the delayed set.
    jest.advanceTimersByTime(100);
    const parked = await gate.acquire('slow', 'j3');
    expect(parked).toEqual({ retryInMs: expect.any(Number) });
  });

  it('spaces parked jobs one slot interval apart, so a backlog comes back at the pace the endpoint takes it', async () => {
    const gate = createEndpointGate({ limit: 2, random: () => 0.5 });
    gate.observe('a', 2_000);
    gate.observe('a', 2_000);
    gate.observe('a', 2_000);
    gate.observe('a', 2_000);
    gate.observe('a', 2_000);
    gate.observe('a', 2_000);
    gate.observe('a', 2_000);
    gate.observe('a', 2_000); // EWMA well above a second
    await gate.acquire('a', 'j1');
    await gate.acquire('a', 'j2');
    const delays = [];
    for (let i = 3; i <= 6; i++) delays.push(((await gate.acquire('a', `j${i}`)) as { retryInMs: number }).retryInMs);
    for (let i = 1; i < delays.length; i++) expect(delays[i] - delays[i - 1]).toBeGreaterThan(500);
    // A parked job coming back while the endpoint is still full is parked again without a look-up.
    expect(gate.reparkIfStillFull('j3')).toEqual({ retryInMs: expect.any(Number) });
    expect(gate.reparkIfStillFull('never-parked')).toBeUndefined();
  });
});
