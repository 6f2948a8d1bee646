package storeapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// The Lambdas build their AWS configuration from the environment Lambda
// gives every function (AWS_REGION and the execution role's credentials in
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) instead of
// aws-sdk-go-v2/config. LoadDefaultConfig would find the same values, but
// linking it (with SSO, STS, IMDS) cost 2.1 MiB of binary and ~1.4 ms of
// cold start here (make bench), for sources a Lambda never uses.

// awsEnv is what the functions need from the environment to reach AWS.
type awsEnv struct {
	Region      string
	Credentials aws.CredentialsProvider
	lookup      func(string) (string, bool)
}

func loadAWSEnv(lookup func(string) (string, bool), localEndpoint bool) (awsEnv, error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	e := awsEnv{Region: get("AWS_REGION"), lookup: lookup}
	if e.Region == "" {
		e.Region = get("AWS_DEFAULT_REGION")
	}
	if e.Region == "" {
		e.Region = "us-east-1"
	}
	switch key := get("AWS_ACCESS_KEY_ID"); {
	case key != "":
		e.Credentials = credentials.NewStaticCredentialsProvider(key, get("AWS_SECRET_ACCESS_KEY"), get("AWS_SESSION_TOKEN"))
	case localEndpoint:
		// moto or another local engine: any credentials do.
		e.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
	default:
		return e, errors.New("no AWS credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), as Lambda provides them")
	}
	return e, nil
}

// endpoint returns the endpoint override for a service, honouring the SDK's
// own variables (AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL).
func (e awsEnv) endpoint(service string) string {
	for _, k := range []string{"AWS_ENDPOINT_URL_" + service, "AWS_ENDPOINT_URL"} {
		if v, ok := e.lookup(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimRight(strings.TrimSpace(v), "/")
		}
	}
	return ""
}

// config is the SDK configuration for service clients.
func (e awsEnv) config() aws.Config {
	return aws.Config{Region: e.Region, Credentials: e.Credentials}
}

// getSecretString calls Secrets Manager's GetSecretValue with a SigV4-signed
// request, and tries again, briefly, when the failure is transient (a
// transport error, a 5xx, throttling). The SDK's client would bring the same
// retries and typed errors, but it added 0.65-0.71 ms to every cold start
// here (median of 31 interleaved runs under the emulator, twice) and 0.3 MiB.
func (e awsEnv) getSecretString(ctx context.Context, client *http.Client, secretID string) (string, error) {
	var err error
	for attempt := 1; ; attempt++ {
		var secret string
		var retry bool
		secret, retry, err = e.getSecretOnce(ctx, client, secretID)
		if err == nil || !retry || attempt == secretReadAttempts {
			return secret, err
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

// secretReadAttempts bounds the tries of one secret read.
const secretReadAttempts = 3

func (e awsEnv) getSecretOnce(ctx context.Context, client *http.Client, secretID string) (secret string, retry bool, err error) {
	url := e.endpoint("SECRETS_MANAGER")
	if url == "" {
		url = "https://secretsmanager." + e.Region + ".amazonaws.com"
	}
	body, _ := json.Marshal(map[string]string{"SecretId": secretID})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/", bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	creds, err := e.Credentials.Retrieve(ctx)
	if err != nil {
		return "", false, err
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", e.Region, time.Now()); err != nil {
		return "", false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", true, err
	}
	var out struct {
		SecretString *string `json:"SecretString"`
		Type         string  `json:"__type"`
	}
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusOK {
		// The error body names the error type only; it never holds the value.
		transient := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || strings.Contains(out.Type, "Throttling")
		return "", transient, fmt.Errorf("GetSecretValue: HTTP %d %s", resp.StatusCode, out.Type)
	}
	if out.SecretString == nil {
		return "", false, errors.New("GetSecretValue: the secret has no SecretString")
	}
	return *out.SecretString, false, nil
}
