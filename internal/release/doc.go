// Package release holds what the project publishes about itself to the files
// that state it: template.yaml's AWS::ServerlessRepo::Application metadata
// against CHANGELOG.md, LICENSE and go.mod; the changelog's shape; the CI
// workflow and the Dependabot configuration against the repository's modules
// and .ci/run. Neither sam validate nor cfn-lint reads the Serverless
// Application Repository metadata, so without these tests a listing could go
// out incomplete or with a stale version. It has tests only.
package release
