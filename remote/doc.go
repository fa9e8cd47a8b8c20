// Package remote moves objects between stores: transports (a path on
// disk today; TLS between devices next), negotiation of what is missing,
// and verification of everything that arrives. It never decides merges
// and never moves a ref before the objects it points at are complete.
package remote
