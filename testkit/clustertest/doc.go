// Package clustertest holds the checks of testkit's clusters
// (testkit.NewCluster, testkit.NewProcessCluster): that their faults do
// what they say to a real chronik-actor cluster, and that nothing they
// start outlives the test (goleak). It is a package of its own so that
// the leak check sees only what these tests start.
package clustertest
