// Package model holds a SPIN (Promela) model of mlsd's commit ordering,
// ordering.pml, and the test that model-checks it. The package has no Go
// code of its own; see docs/mlsd.md, "Model-checked ordering", for what the
// model covers and which properties are checked.
//
// Run the check (needs spin and gcc; in CI, with CI=true, a missing spin
// fails the test):
//
//	go test -v -run TestOrdering ./ds/model
//
// MLSD_MODEL_LARGE=1 adds three clients without client crashes (about 10
// million states per run; several minutes).
package model
