// Package helm holds the tests of the Helm chart in signet/. It is a module
// of its own so that Helm's and Kubernetes' Go libraries, which only the
// tests need, stay out of the server's dependencies.
package helm
