/**
 * What is in scope, from --include-namespaces, --exclude-namespaces, --exclude-host and
 * --exclude-pods: a pure verdict on a pod (or on the host), used both to write the kernel's table
 * (src/scope/scope.ts) and to judge in user space the events of cgroups the table did not list yet.
 */
import type { PodInfo } from '../kube/types.js';
import type { ScopeReason } from './table.js';

/** One requirement of a label selector, as Kubernetes writes them. */
export type LabelRequirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!exists' };

/** Requirements that must all hold (`app=web,tier!=db`). */
export interface LabelSelector {
  text: string;
  requirements: LabelRequirement[];
}

/** The scope options of Config. */
export interface ScopeRules {
  /** Namespace patterns (`*` matches any run of characters); empty: every namespace. */
  includeNamespaces: string[];
  excludeNamespaces: string[];
  excludeHost: boolean;
  /** A pod any of them selects is out of scope. */
  excludePods: LabelSelector[];
}

/** Whether any option narrows the scope at all (if not, the kernel table stays empty). */
export function narrowsScope(rules: ScopeRules): boolean {
  return rules.includeNamespaces.length > 0 || rules.excludeNamespaces.length > 0 || rules.excludeHost || rules.excludePods.length > 0;
}

/** A namespace pattern as an anchored regular expression: `*` is the only special character. */
function patternRegex(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*')}$`);
}

function matchesAny(patterns: readonly string[], namespace: string): boolean {
  return patterns.some((p) => patternRegex(p).test(namespace));
}

function selects(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  return selector.requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    switch (r.op) {
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case 'in':
        return has && r.values.includes(labels[r.key] as string);
      case 'notin':
        return !has || !r.values.includes(labels[r.key] as string);
    }
  });
}

/**
 * Why `pod` (null: a host process) is out of scope, or null when it is in. --include-namespaces
 * narrows the pods only: the host follows --exclude-host alone.
 */
export function outOfScope(rules: ScopeRules, pod: Pick<PodInfo, 'namespace' | 'labels'> | null): ScopeReason | null {
  if (pod === null) return rules.excludeHost ? 'host' : null;
  if (rules.includeNamespaces.length > 0 && !matchesAny(rules.includeNamespaces, pod.namespace)) return 'namespace';
  if (matchesAny(rules.excludeNamespaces, pod.namespace)) return 'namespace';
  if (rules.excludePods.some((s) => selects(s, pod.labels))) return 'pod';
  return null;
}

/** A label key: an optional DNS-subdomain prefix and a slash, then a name of up to 63 characters. */
const LABEL_KEY = /^(?:[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/**
 * Parses a label selector as kubectl takes one: requirements separated by commas, each `k=v`,
 * `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)` or `k notin (a,b)`. Throws an Error naming what is wrong.
 */
export function parseLabelSelector(text: string): LabelSelector {
  const requirements: LabelRequirement[] = [];
  // Commas inside parentheses belong to a value list.
  const parts = text.match(/(?:[^,(]|\([^)]*\))+/g) ?? [];
  if (text.trim() === '' || parts.join(',') !== text) throw new Error('is not a label selector');
  for (const raw of parts) {
    const part = raw.trim();
    const key = (k: string): string => {
      if (!LABEL_KEY.test(k)) throw new Error(`has an invalid label key "${k}"`);
      return k;
    };
    const value = (v: string): string => {
      if (!LABEL_VALUE.test(v)) throw new Error(`has an invalid label value "${v}"`);
      return v;
    };
    let m: RegExpExecArray | null;
    if ((m = /^(.+?)\s+(in|notin)\s*\((.*)\)$/.exec(part))) {
      requirements.push({ key: key(m[1] as string), op: m[2] as 'in' | 'notin', values: (m[3] as string).split(',').map((v) => value(v.trim())) });
    } else if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part))) {
      requirements.push({ key: key(m[1] as string), op: m[2] === '!=' ? 'notin' : 'in', values: [value((m[3] as string).trim())] });
    } else if ((m = /^!\s*(\S+)$/.exec(part))) {
      requirements.push({ key: key(m[1] as string), op: '!exists' });
    } else {
      requirements.push({ key: key(part), op: 'exists' });
    }
  }
  return { text, requirements };
}
