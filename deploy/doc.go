// Package deploy holds the tests of the deployment artefacts beside it: the
// compose file at the repository's root and the Helm chart in helm/signet.
// It is a module of its own so that the libraries only these tests need
// (the Compose specification's loader, Helm, the Kubernetes API types) stay
// out of the server's dependencies.
package deploy
