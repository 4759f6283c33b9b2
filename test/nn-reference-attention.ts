// Causal multi-head self-attention in float64, written from the definitions (not from src/nn/attention.ts),
// with a bound per output element on how far a correct float32 kernel may land from it; the loss of one
// (batch, head) unit for finite differences. qkv [B, T, 3C] (q | k | v, head h in columns [h·d, (h+1)·d)),
// out [B, T, C], probabilities [B·heads, T, T], lse [B·heads, T].
//
// The bounds follow the arithmetic of the kernels, each float32 operation rounding by at most u = 2⁻²⁴ of
// its result and an inner product of n terms by γₙ = n·u/(1 − n·u) of Σ|terms| (Higham §3.1), whatever the
// order and with or without fused multiply-adds; exp is within 2 ulps (4u relative) where normal. Per row i
// of a unit (n = i + 1 live scores, x_j = q_i·k_j/√d):
//   E   = γ_{d+3}·max_j Σ_c|q_ic·k_jc|/√d   the score's error (GEMM γ_d, the scale's rounding and its product)
//   X   = max_j |x_j| + E                    the scale of the row
//   ε   = 2E + γ_n + u·(5X + 2·ln n + 13)    |log p̂_j − log p_j|: x_j and the lse each off by ≤ E; the lse's
//         sum (γ_n), its exps (4u) and their arguments' rounding (2uX); the lse's own rounding u(X + ln n); e_j
//         (4u + 2uX), c = exp(m − lse) (4u + u·ln n) and e·c (u)
//   |p̂ − p| ≤ p·(e^ε − 1) + 2⁻¹⁴⁸ (a probability below 2⁻¹²⁶ rounds once into the subnormals)
// and from there through each product, as the comments below say. Second-order terms (ε², products of γ)
// are carried explicitly; a final 2⁻¹²⁰ absolute covers the subnormal roundings (≤ T·2⁻¹⁴⁹·max|operand|).

export const u = 2 ** -24;
export const gamma = (n: number): number => (n * u) / (1 - n * u);
export const kTinyProb = 2 ** -148;
const kTiny = 2 ** -120;

/**
 * The bounds of one softmax row of n live scores, each off by ≤ E, |x| ≤ X: `eta` = e^ε − 1 bounds
 * |p̂ − p|/p (plus 2⁻¹⁴⁸ absolute); `lse` bounds |lsê − lse| (each x_j off by ≤ E, the sum's relative
 * error γ_n + 4u + 2uX to second order, its rounding u(X + ln n), float64's log).
 */
export function softmaxRowBounds(E: number, X: number, n: number): { eta: number; lse: number } {
  let eps = 2 * E + gamma(n) + u * (5 * X + 2 * Math.log(n) + 13);
  eps += eps * eps;
  const rho = gamma(n) + 4 * u + 2 * u * X;
  return { eta: Math.expm1(eps), lse: E + rho + rho * rho + u * (X + Math.log(n)) + 1e-15 };
}

export interface AttentionShape {
  readonly B: number;
  readonly T: number;
  readonly C: number;
  readonly heads: number;
}

export interface RefForward {
  readonly out: Float64Array;
  readonly probs: Float64Array;
  readonly lse: Float64Array;
  /** Per element of out, probs, lse: how far a correct float32 kernel may be. */
  readonly outBound: Float64Array;
  readonly probsBound: Float64Array;
  readonly lseBound: Float64Array;
  /** Per (unit, row): e^ε − 1, the relative bound of the row's probabilities (for the backward's bounds). */
  readonly eta: Float64Array;
}

export interface RefBackward {
  readonly dqkv: Float64Array;
  readonly bound: Float64Array;
}

/** Offsets of unit (b, h): where its q, k, v columns start in qkv and its columns in out. */
function unitAt(s: AttentionShape, unit: number): { qkv: number; out: number; d: number } {
  const d = s.C / s.heads;
  const b = Math.floor(unit / s.heads);
  const h = unit % s.heads;
  return { qkv: b * s.T * 3 * s.C + h * d, out: b * s.T * s.C + h * d, d };
}

/** The forward alone (what gpt-reference.ts's refAttention builds on): out, the probabilities and the lse. */
export function refCausalAttention(qkv: ArrayLike<number>, s: AttentionShape): { out: Float64Array; probs: Float64Array; lse: Float64Array } {
  const f = refAttentionForward(qkv, s);
  return { out: f.out, probs: f.probs, lse: f.lse };
}

export function refAttentionForward(qkv: ArrayLike<number>, s: AttentionShape): RefForward {
  const { B, T, C, heads } = s;
  const units = B * heads;
  const out = new Float64Array(B * T * C);
  const outBound = new Float64Array(B * T * C);
  const probs = new Float64Array(units * T * T);
  const probsBound = new Float64Array(units * T * T);
  const lse = new Float64Array(units * T);
  const lseBound = new Float64Array(units * T);
  const eta = new Float64Array(units * T);
  const x = new Float64Array(T);
  const abs = new Float64Array(T);
  for (let unit = 0; unit < units; unit++) {
    const at = unitAt(s, unit);
    const { d } = at;
    const root = Math.sqrt(d);
    for (let i = 0; i < T; i++) {
      const n = i + 1;
      const max = scoreRow(qkv, C, at, i, x, abs);
      let E = 0;
      let X = 0;
      for (let j = 0; j < n; j++) {
        E = Math.max(E, (gamma(d + 3) * abs[j]) / root);
        X = Math.max(X, Math.abs(x[j]));
      }
      X += E;
      const total = expShifted(x, n, max);
      const row = (unit * T + i) * T;
      for (let j = 0; j < n; j++) probs[row + j] = x[j] / total;
      lse[unit * T + i] = max + Math.log(total);
      const bounds = softmaxRowBounds(E, X, n);
      const e = bounds.eta;
      eta[unit * T + i] = e;
      for (let j = 0; j < n; j++) probsBound[row + j] = probs[row + j] * e + kTinyProb;
      lseBound[unit * T + i] = bounds.lse;
      // out = Σ_j p̂_j·v_j: the probabilities' error carried by |v|, plus the GEMM's γ over the n live terms
      // (the zeros past them add exactly) and one more for the k slabs' sums.
      const o = at.out + i * C;
      for (let c = 0; c < d; c++) {
        let sum = 0;
        let mass = 0;
        for (let j = 0; j < n; j++) {
          const v = qkv[at.qkv + j * 3 * C + 2 * C + c];
          sum += probs[row + j] * v;
          mass += (probs[row + j] + kTinyProb) * Math.abs(v);
        }
        out[o + c] = sum;
        outBound[o + c] = mass * (e + gamma(n + 1) * (1 + e)) + kTiny;
      }
    }
  }
  return { out, probs, lse, outBound, probsBound, lseBound, eta };
}

/**
 * dqkv of the loss Σ dout·out, in float64 from the definitions (dS = P ⊙ (dP − Σ_j P·dP)/√d, dq = dS·k,
 * dk = dSᵀ·q, dv = Pᵀ·dout), with its float32 bound.
 */
export function refAttentionBackward(qkv: ArrayLike<number>, dout: ArrayLike<number>, s: AttentionShape, f: RefForward): RefBackward {
  const { B, T, C, heads } = s;
  const units = B * heads;
  const dqkv = new Float64Array(B * T * 3 * C);
  const bound = new Float64Array(B * T * 3 * C);
  const ds = new Float64Array(T * T);
  const dsBound = new Float64Array(T * T);
  for (let unit = 0; unit < units; unit++) {
    const at = unitAt(s, unit);
    const { d } = at;
    const root = Math.sqrt(d);
    ds.fill(0);
    dsBound.fill(0);
    for (let i = 0; i < T; i++) {
      const n = i + 1;
      const row = (unit * T + i) * T;
      const eta = f.eta[unit * T + i];
      const go = at.out + i * C;
      // dP_ij = dout_i·v_j (GEMM: γ_{d+2} of Σ|terms|, one for the k slabs); D = Σ_j p·dP (four lanes, γ_{n+1}).
      const dp = new Float64Array(n);
      const dpBound = new Float64Array(n);
      let D = 0;
      let dBound = 0;
      let dMass = 0;
      for (let j = 0; j < n; j++) {
        const v = at.qkv + j * 3 * C + 2 * C;
        let sum = 0;
        let abs = 0;
        for (let c = 0; c < d; c++) {
          sum += dout[go + c] * qkv[v + c];
          abs += Math.abs(dout[go + c] * qkv[v + c]);
        }
        dp[j] = sum;
        dpBound[j] = gamma(d + 2) * abs;
        const p = f.probs[row + j];
        D += p * sum;
        dBound += eta * p * Math.abs(sum) + p * (1 + eta) * dpBound[j];
        dMass += p * (1 + eta) * (Math.abs(sum) + dpBound[j]);
      }
      dBound += gamma(n + 1) * dMass;
      for (let j = 0; j < n; j++) {
        const p = f.probs[row + j];
        const g = dp[j] - D;
        const gBound = dpBound[j] + dBound + u * (Math.abs(g) + dpBound[j] + dBound);
        ds[i * T + j] = (p * g) / root;
        // fl(fl(p̂·ĝ)·scale): p̂ĝ off by p(1+η)Δg + ηp|g|, two roundings and the scale's own (3u, and a little).
        dsBound[i * T + j] = (p * (1 + eta) * gBound + eta * p * Math.abs(g) + 3.01 * u * p * (1 + eta) * (Math.abs(g) + gBound)) / root + kTinyProb;
      }
    }
    for (let c = 0; c < d; c++) {
      for (let i = 0; i < T; i++) {
        // dq_i = Σ_{j ≤ i} ds_ij·k_j: γ over the n live terms (+1 for the k slabs).
        const n = i + 1;
        let sum = 0;
        let err = 0;
        let mass = 0;
        for (let j = 0; j < n; j++) {
          const k = qkv[at.qkv + j * 3 * C + C + c];
          sum += ds[i * T + j] * k;
          err += dsBound[i * T + j] * Math.abs(k);
          mass += (Math.abs(ds[i * T + j]) + dsBound[i * T + j]) * Math.abs(k);
        }
        dqkv[at.qkv + i * 3 * C + c] = sum;
        bound[at.qkv + i * 3 * C + c] = err + gamma(n + 1) * mass + kTiny;
      }
      for (let j = 0; j < T; j++) {
        // dk_j = Σ_{i ≥ j} ds_ij·q_i and dv_j = Σ_{i ≥ j} p_ij·dout_i, summed over the query blocks: each block's
        // partial (an inner product) added to the rows' running sums, at most one block per live term, so at
        // most 2(T − j) roundings on any term.
        const g = gamma(2 * (T - j) + 1);
        let dk = 0;
        let dkErr = 0;
        let dkMass = 0;
        let dv = 0;
        let dvErr = 0;
        let dvMass = 0;
        for (let i = j; i < T; i++) {
          const q = qkv[at.qkv + i * 3 * C + c];
          const o = dout[at.out + i * C + c];
          const p = f.probs[(unit * T + i) * T + j];
          const eta = f.eta[unit * T + i];
          dk += ds[i * T + j] * q;
          dkErr += dsBound[i * T + j] * Math.abs(q);
          dkMass += (Math.abs(ds[i * T + j]) + dsBound[i * T + j]) * Math.abs(q);
          dv += p * o;
          dvErr += (eta * p + kTinyProb) * Math.abs(o);
          dvMass += (p * (1 + eta) + kTinyProb) * Math.abs(o);
        }
        dqkv[at.qkv + j * 3 * C + C + c] = dk;
        bound[at.qkv + j * 3 * C + C + c] = dkErr + g * dkMass + kTiny;
        dqkv[at.qkv + j * 3 * C + 2 * C + c] = dv;
        bound[at.qkv + j * 3 * C + 2 * C + c] = dvErr + g * dvMass + kTiny;
      }
    }
  }
  return { dqkv, bound };
}

/**
 * Σ_{i in [r0, r1)} Σ_c w[b, i, h·d + c]·out[b, i, h·d + c] for one unit, in float64: the part of the loss
 * Σ w·out that one element of the unit's q (r0 = i, r1 = i + 1) or k, v (rows [j, T)) can move.
 */
export function refUnitLoss(qkv: ArrayLike<number>, w: ArrayLike<number>, s: AttentionShape, unit: number, r0: number, r1: number): number {
  const { C } = s;
  const at = unitAt(s, unit);
  const x = new Float64Array(r1);
  let loss = 0;
  for (let i = r0; i < r1; i++) {
    const total = expShifted(x, i + 1, scoreRow(qkv, C, at, i, x, null));
    for (let c = 0; c < at.d; c++) {
      let o = 0;
      for (let j = 0; j <= i; j++) o += x[j] * qkv[at.qkv + j * 3 * C + 2 * C + c];
      loss += (w[at.out + i * C + c] * o) / total;
    }
  }
  return loss;
}

/** x[j] = q_i·k_j/√d for j ≤ i (and abs[j] = Σ_c |q_ic·k_jc| unless null); returns max_j x[j]. */
function scoreRow(qkv: ArrayLike<number>, C: number, at: { qkv: number; d: number }, i: number, x: Float64Array, abs: Float64Array | null): number {
  const q = at.qkv + i * 3 * C;
  const root = Math.sqrt(at.d);
  let max = -Infinity;
  for (let j = 0; j <= i; j++) {
    const k = at.qkv + j * 3 * C + C;
    let dot = 0;
    let sum = 0;
    for (let c = 0; c < at.d; c++) {
      dot += qkv[q + c] * qkv[k + c];
      sum += Math.abs(qkv[q + c] * qkv[k + c]);
    }
    x[j] = dot / root;
    if (abs) abs[j] = sum;
    max = Math.max(max, x[j]);
  }
  return max;
}

/** x[j] ← exp(x[j] − max) for j < n; returns their sum. */
function expShifted(x: Float64Array, n: number, max: number): number {
  let total = 0;
  for (let j = 0; j < n; j++) total += x[j] = Math.exp(x[j] - max);
  return total;
}

/** The worst |got − want| / bound with its index; exact where the bound is 0; NaN (unwritten) is the worst. */
export function worst(got: ArrayLike<number>, want: ArrayLike<number>, bound: ArrayLike<number>): { ratio: number; at: number } {
  let ratio = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    const r = d === 0 ? 0 : d / bound[i];
    if (!(r <= ratio)) {
      ratio = Number.isNaN(r) ? Infinity : r;
      at = i;
    }
  }
  return { ratio, at };
}
