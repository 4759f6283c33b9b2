// Every schedule at its edges, against the formulas in the README's Schedules section (t = completed steps, 0-based).
import { expect } from 'chai';
import { createSchedule, scheduleNames, type ScheduleOptions } from '../src/index.js';
import { freshSeed, peakByScan, rng } from './reference.js';

const close = (a: number, b: number) => expect(a).to.be.closeTo(b, 1e-12);

describe('schedules', () => {
  it('constant is 1 everywhere', () => {
    const s = createSchedule({ name: 'constant', lr: 0.1 });
    for (const t of [0, 1, 10, 1e6]) close(s.lrAt(t), 0.1);
  });

  it('constant-warmup ramps t/w then stays at 1', () => {
    const s = createSchedule({ name: 'constant-warmup', warmupSteps: 4 });
    expect([0, 1, 2, 3, 4, 5, 100].map((t) => s.multiplierAt(t))).to.deep.equal([0, 0.25, 0.5, 0.75, 1, 1, 1]);
  });

  it('linear (HF): warmup, then decay from the end of warmup to 0 at totalSteps, 0 after', () => {
    const s = createSchedule({ name: 'linear', warmupSteps: 10, totalSteps: 110 });
    close(s.multiplierAt(0), 0);
    close(s.multiplierAt(5), 0.5);
    close(s.multiplierAt(9), 0.9);
    close(s.multiplierAt(10), 1); // (110-10)/(110-10)
    close(s.multiplierAt(60), 0.5); // (110-60)/100
    close(s.multiplierAt(110), 0);
    close(s.multiplierAt(500), 0);
  });

  it('linear with no warmup starts at 1', () => {
    const s = createSchedule({ name: 'linear', totalSteps: 4 });
    expect([0, 1, 2, 3, 4, 5].map((t) => s.multiplierAt(t))).to.deep.equal([1, 0.75, 0.5, 0.25, 0, 0]);
  });

  it('cosine (HF, 0.5 cycles): warmup, ½(1+cos(π·progress)), clamped at 0 past the end', () => {
    const s = createSchedule({ name: 'cosine', warmupSteps: 10, totalSteps: 110 });
    close(s.multiplierAt(5), 0.5);
    close(s.multiplierAt(10), 1);
    close(s.multiplierAt(60), 0.5); // progress ½ → ½(1+cos(π/2))
    close(s.multiplierAt(35), 0.5 * (1 + Math.cos(Math.PI * 0.25)));
    close(s.multiplierAt(110), 0);
    // past the end HF's formula would rise again (cos > -1): it is clamped by max(0, ·) only where negative
    close(s.multiplierAt(210), Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 2))));
  });

  it('cosine with cycles 1 goes down and back up', () => {
    const s = createSchedule({ name: 'cosine', totalSteps: 100, cycles: 1 });
    close(s.multiplierAt(50), 0);
    close(s.multiplierAt(100), 1);
  });

  it('polynomial (HF): lr_end at totalSteps, lr_end/lr_0 after, power applied to the remaining fraction', () => {
    const s = createSchedule({ name: 'polynomial', lr: 1, warmupSteps: 10, totalSteps: 110, power: 2, endLr: 0.1 });
    close(s.multiplierAt(5), 0.5);
    close(s.multiplierAt(10), 1);
    close(s.multiplierAt(60), 0.9 * 0.25 + 0.1);
    close(s.multiplierAt(110), 0.1);
    close(s.multiplierAt(111), 0.1);
    const t = createSchedule({ name: 'polynomial', lr: 2, totalSteps: 10, endLr: 0.5 });
    close(t.lrAt(5), 1.5 * 0.5 + 0.5);
    close(t.lrAt(50), 0.5);
  });

  it('bert: decay counts from step 0 (not from the end of warmup), warmup overrides it while t < w', () => {
    const s = createSchedule({ name: 'bert', lr: 1, warmupSteps: 10, totalSteps: 100 });
    close(s.multiplierAt(0), 0);
    close(s.multiplierAt(5), 0.5);
    close(s.multiplierAt(9), 0.9);
    close(s.multiplierAt(10), 0.9); // 1 − 10/100: the decay already ran during warmup
    close(s.multiplierAt(50), 0.5);
    close(s.multiplierAt(100), 0);
    close(s.multiplierAt(150), 0);
    const hf = createSchedule({ name: 'linear', warmupSteps: 10, totalSteps: 100 });
    expect(hf.multiplierAt(10)).to.equal(1); // BERT's decay is not shifted by the warmup; HF's is
  });

  it('rejects bad schedules with a message naming the field', () => {
    expect(() => createSchedule({ name: 'cosin' as never })).to.throw(/schedule\.name must be one of .* got "cosin"/);
    expect(() => createSchedule({ name: 'linear' })).to.throw(/schedule\.totalSteps must be a positive integer for 'linear'/);
    expect(() => createSchedule({ name: 'linear', totalSteps: 5, warmupSteps: 6 })).to.throw(/warmupSteps \(6\) must not exceed totalSteps \(5\)/);
    expect(() => createSchedule({ name: 'constant', warmupSteps: -1 })).to.throw(/warmupSteps must be a non-negative integer, got -1/);
    expect(() => createSchedule({ name: 'polynomial', lr: 1e-8, totalSteps: 5 })).to.throw(/endLr .* must be smaller than lr/);
    expect(() => createSchedule({ name: 'constant' }).multiplierAt(1.5)).to.throw(/non-negative integer, got 1.5/);
  });

  // peakMultiplier is a closed form (the largest of the multipliers at steps 0, w − 1 and w); the scan looks
  // at every step up to totalSteps + warmupSteps + 2, past which every schedule holds its end value.
  const peakSeed = freshSeed();
  it(`peakMultiplier equals the largest multiplier at any step, for 400 random schedules of every name (seed ${peakSeed})`, () => {
    const next = rng(peakSeed);
    const int = (n: number) => Math.floor(next() * n);
    for (let k = 0; k < 400; k++) {
      const name = scheduleNames[k % scheduleNames.length];
      const totalSteps = 1 + int(60);
      const o: ScheduleOptions = { name, lr: 0.01, totalSteps, warmupSteps: int(totalSteps + 1), power: 0.5 + 2 * next(), cycles: [0.5, 1, 1.5, 0.3][int(4)] };
      const s = createSchedule(o);
      expect(s.peakMultiplier, JSON.stringify(o)).to.equal(peakByScan(s));
    }
  });

  it('peakMultiplier at the edges: 1 where the schedule reaches its base lr; bert and linear with warmup = total below 1; 0 for w = T = 1', () => {
    expect(createSchedule({ name: 'constant' }).peakMultiplier).to.equal(1);
    expect(createSchedule({ name: 'constant-warmup', warmupSteps: 1000 }).peakMultiplier).to.equal(1); // reached at step 1000, whatever a run's length
    expect(createSchedule({ name: 'cosine', warmupSteps: 7, totalSteps: 7 }).peakMultiplier).to.equal(1); // progress 0 at t = w
    expect(createSchedule({ name: 'linear', warmupSteps: 4, totalSteps: 4 }).peakMultiplier).to.equal(0.75); // 3/4 at t = 3, then 0
    expect(createSchedule({ name: 'bert', warmupSteps: 10, totalSteps: 40 }).peakMultiplier).to.equal(0.9); // max(9/10, 1 − 10/40)
    expect(createSchedule({ name: 'bert', warmupSteps: 2, totalSteps: 40 }).peakMultiplier).to.equal(0.95); // max(1/2, 1 − 2/40)
    expect(createSchedule({ name: 'bert', totalSteps: 40 }).peakMultiplier).to.equal(1);
    expect(createSchedule({ name: 'linear', warmupSteps: 1, totalSteps: 1 }).peakMultiplier).to.equal(0);
  });
});
