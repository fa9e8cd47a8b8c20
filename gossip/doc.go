// Package gossip tells the devices of a mesh who has which head, over
// hashicorp/memberlist: membership (keyed and labelled by the mesh, so a
// node without the secret can neither join nor read), head announcements
// as named broadcasts (a newer head of a device replaces the queued older
// one), and anti-entropy of the whole head vector in push/pull, so a
// device back from a partition or a restart learns every head.
//
// Everything here is a hint: each announcement is signed with the
// announcing device's Ed25519 key and checked, but objects only ever move
// over mutual TLS (package remote), and whoever acts on a head verifies
// what it fetches. gossip never moves objects and imports object only.
package gossip
