// A model module for `shardtrain train`: classify points of three interleaved spirals with a small MLP.
// Run it with:  npx shardtrain train --config config/spirals.json
//
// The contract (see README, "Model modules"): export createModel, loadData and loss (and optionally
// sample). `tf` is @tensorflow/tfjs-core and `tfl` is @tensorflow/tfjs-layers, passed in so this file
// needs no imports of its own. Name your layers: tensor names (and weight-decay rules) come from them.

/** Three spirals of `perClass` points each, with seeded noise; 20% of them held out. */
export function loadData({ options, seed }) {
  const perClass = options.perClass ?? 600;
  let s = (seed + 1) >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const points = [];
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < perClass; i++) {
      const r = i / perClass;
      const angle = c * ((2 * Math.PI) / 3) + 4 * r + 0.2 * (rand() - 0.5);
      points.push([r * Math.sin(angle), r * Math.cos(angle), c, rand()]);
    }
  }
  points.sort((a, b) => a[3] - b[3]); // seeded shuffle
  const split = (rows) => ({
    x: Float32Array.from(rows.flatMap((p) => [p[0], p[1]])),
    y: Int32Array.from(rows.map((p) => p[2])),
    xShape: [2],
    yShape: [],
  });
  const cut = Math.floor(points.length * 0.8);
  return { train: split(points.slice(0, cut)), eval: split(points.slice(cut)) };
}

export function createModel({ tfl, options, seed }) {
  const hidden = options.hidden ?? 64;
  return tfl.sequential({
    layers: [
      tfl.layers.dense({ name: 'dense_1', inputShape: [2], units: hidden, activation: 'relu', kernelInitializer: tfl.initializers.heNormal({ seed }) }),
      tfl.layers.dense({ name: 'dense_2', units: hidden, activation: 'relu', kernelInitializer: tfl.initializers.heNormal({ seed: seed + 1 }) }),
      tfl.layers.dense({ name: 'logits', units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 2 }) }),
    ],
  });
}

/** Mean cross-entropy over the batch (a scalar). */
export function loss({ tf, model, x, y }) {
  const logits = model.apply(x);
  return tf.losses.softmaxCrossEntropy(tf.oneHot(y, 3), logits);
}

/** Optional: strings printed at the end of training. Here: the class predicted around a circle. */
export function sample({ tf, model, count }) {
  const angles = Array.from({ length: count }, (_, i) => (2 * Math.PI * i) / count);
  const x = tf.tensor2d(angles.flatMap((a) => [0.5 * Math.sin(a), 0.5 * Math.cos(a)]), [count, 2]);
  const classes = tf.tidy(() => tf.argMax(model.apply(x), 1).dataSync());
  x.dispose();
  return angles.map((a, i) => `θ=${a.toFixed(2)}→class ${classes[i]}`);
}
