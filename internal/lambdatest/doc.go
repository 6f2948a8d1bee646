// Package lambdatest holds the deploy artifacts to what the code says: it
// reads template.yaml and checks its routes, functions, IAM, table and
// secret against the route table, the store and the configuration; checks
// that each functions/<name>/main.go names its own route; checks
// that `sam build` produced static linux/arm64 bootstraps built from the
// right functions; and runs every function, built by its own Makefile target
// for the host, under the AWS Lambda Runtime Interface Emulator against moto
// and stripe-mock, as API Gateway would invoke it.
//
// It has no code outside its tests. Like internal/testenv, a test whose
// servers or artifacts are missing skips locally and fails in CI (CI=true).
package lambdatest
