// Package merge owns comparing and combining versions: line diffs, merge
// bases over the commit DAG, tree three-way merge and line-level text merge,
// and the conflict policy. It reads objects through package object and never
// touches refs or the working tree.
package merge
