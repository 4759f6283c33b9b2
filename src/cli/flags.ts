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

/** A repeatable option (`--set a=1 --set b=2`): each value appended to the list. */
export const collect = (value: string, previous: readonly string[]): string[] => [...previous, value];

export const kSetHelp = 'override a config key, as JSON where it parses (optimizer.lr=3e-4, model.options.layers=6, optimizer.betas=[0.9,0.95]), else as text; repeatable';
