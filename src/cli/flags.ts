// Flag parsers for commander: a bad value is commander's InvalidArgumentError, which it prints as one line
// naming the option (`error: option '-t, --threads <n>' argument 'x' is invalid. --threads must be …`), exit 1.
import { InvalidArgumentError } from 'commander';

export function parseNumber(flag: string, check: (n: number) => boolean, what: string): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !check(n)) throw new InvalidArgumentError(`${flag} must be ${what}, got ${value}`);
    return n;
  };
}

export const positiveInt = (flag: string): ((value: string) => number) => parseNumber(flag, (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
