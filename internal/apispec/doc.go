// Package apispec holds openapi.yaml, the published HTTP contract, to the
// route table the Lambdas, the dev server and template.yaml share
// (httpapi.Routes). It has tests only.
package apispec
