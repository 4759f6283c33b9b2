export default function throws(range: { start: number }): never {
  throw new Error(`bad element at ${range.start}`);
}
