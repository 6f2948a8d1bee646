package release

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/internal/repofile"
	"github.com/connectexpress/onboarding/internal/testenv"
)

// requireFile stops a test whose prerequisite file is missing: skip
// locally, fail in CI, as internal/testenv does for servers.
func requireFile(t *testing.T, path, provider string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is missing: %s provides it", path, provider)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (in CI every check must run)", msg)
	}
	t.Skip(msg)
}

// awsEnv is the environment for the venv's AWS tools against moto_server:
// fixed test credentials, no profile or config of the machine.
func awsEnv(endpoint string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_ENDPOINT_URL="+endpoint, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "SAM_CLI_TELEMETRY=0")
}

// s3Script creates a bucket (argv: create BUCKET) or downloads objects into
// a folder (argv: get BUCKET DIR KEY...), with the venv's boto3.
const s3Script = `
import os, sys, boto3
s3 = boto3.client("s3")
if sys.argv[1] == "create":
    s3.create_bucket(Bucket=sys.argv[2])
else:
    for key in sys.argv[4:]:
        s3.download_file(sys.argv[2], key, os.path.join(sys.argv[3], key))
`

// s3Object splits "s3://bucket/key" for bucket, or fails the test.
func s3Object(t *testing.T, what, uri, bucket string) string {
	t.Helper()
	key, ok := strings.CutPrefix(uri, "s3://"+bucket+"/")
	if !ok || key == "" || strings.Contains(key, "/") {
		t.Fatalf("%s is %q, want s3://%s/<key>: sam publish takes only S3 objects", what, uri, bucket)
	}
	return key
}

// The publishing path up to the step that needs an AWS account: `sam package`
// of the built template, as the README runs it, against moto_server's S3.
// What it writes is what `sam publish` sends: the metadata unchanged except
// LicenseUrl and ReadmeUrl, which must be S3 objects holding LICENSE and
// README.md, and every function's code an S3 zip holding its bootstrap.
func TestSAMPackageUploadsWhatSAMPublishNeeds(t *testing.T) {
	root := repofile.Root(t)
	built := filepath.Join(root, ".aws-sam", "build", "template.yaml")
	requireFile(t, built, "`make test` (scripts/check-template.sh runs sam build)")
	sam := filepath.Join(root, ".venv", "bin", "sam")
	python := filepath.Join(root, ".venv", "bin", "python")
	requireFile(t, sam, "`make test` (scripts/venv.sh)")
	endpoint := testenv.MotoEndpoint(t) // moto_server serves S3 beside DynamoDB
	env := awsEnv(endpoint)

	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = root, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
	}
	bucket := "sar-package-" + strings.ToLower(testenv.RandomID(8))
	run(python, "-c", s3Script, "create", bucket)
	packaged := filepath.Join(t.TempDir(), "packaged.yaml")
	run(sam, "package", "--template-file", built, "--s3-bucket", bucket, "--output-template-file", packaged, "--region", "us-east-1")

	raw, err := os.ReadFile(packaged)
	if err != nil {
		t.Fatal(err)
	}
	out := parseYAML(t, "packaged.yaml", raw)
	source := sarMetadata(parseYAML(t, "template.yaml", readFile(t, "template.yaml")))
	got := sarMetadata(out)
	if got == nil {
		t.Fatal("packaged.yaml has no AWS::ServerlessRepo::Application metadata")
	}

	// Each uploaded object and the local file it must hold (two may share a
	// key: sam package names objects by their content's hash).
	type upload struct{ key, local string }
	var want []upload
	for _, prop := range sarProperties {
		src, pkg := repofile.YAMLPath(source, prop), repofile.YAMLPath(got, prop)
		switch {
		case pkg == nil:
			t.Errorf("packaged metadata lost %s", prop)
		case prop == "LicenseUrl" || prop == "ReadmeUrl":
			want = append(want, upload{s3Object(t, prop, pkg.Value, bucket), filepath.Join(root, src.Value)})
		default:
			var a, b any
			_ = src.Decode(&a)
			_ = pkg.Decode(&b)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Errorf("packaged %s is %v, template.yaml's %v", prop, b, a)
			}
		}
	}
	resources := repofile.YAMLPath(out, "Resources")
	functions := 0
	for _, id := range mappingKeys(resources) {
		r := repofile.YAMLPath(resources, id)
		if typ := repofile.YAMLPath(r, "Type"); typ == nil || typ.Value != "AWS::Serverless::Function" {
			continue
		}
		functions++
		code := repofile.YAMLPath(r, "Properties", "CodeUri")
		if code == nil {
			t.Fatalf("%s has no CodeUri", id)
		}
		want = append(want, upload{s3Object(t, id+" CodeUri", code.Value, bucket), filepath.Join(root, ".aws-sam", "build", id, "bootstrap")})
	}
	if functions == 0 {
		t.Fatal("packaged.yaml has no functions")
	}

	dir := t.TempDir()
	keys := make([]string, 0, len(want))
	for _, u := range want {
		if !slices.Contains(keys, u.key) {
			keys = append(keys, u.key)
		}
	}
	run(python, append([]string{"-c", s3Script, "get", bucket, dir}, keys...)...)
	for _, u := range want {
		key, local := u.key, u.local
		uploaded, err := os.ReadFile(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(local) == "bootstrap" {
			uploaded = zipEntry(t, uploaded, "bootstrap")
		}
		expected, err := os.ReadFile(local)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(uploaded, expected) {
			t.Errorf("s3://%s/%s does not hold %s", bucket, key, local)
		}
	}
	t.Logf("sam package uploaded %d functions, LICENSE and README.md; metadata %s", functions, repofile.YAMLPath(got, "SemanticVersion").Value)
}

// zipEntry returns the contents of name in a zip archive, or fails the test.
func zipEntry(t *testing.T, archive []byte, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	t.Fatalf("the zip has no %s", name)
	return nil
}
