package stripeconnect_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/stripeconnect"
)

const (
	testWebhookSecret = "whsec_test_current_secret"
	oldWebhookSecret  = "whsec_test_previous_secret"
	codeSignature     = "invalid_signature"
	codePayload       = "invalid_payload"
)

// webhookNow is the verifier's fixed clock.
var webhookNow = time.Unix(1700000500, 0)

func fixedClock() time.Time { return webhookNow }

// sign returns the Stripe-Signature header Stripe would send.
func sign(payload []byte, secret string, ts time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: payload, Secret: secret, Timestamp: ts,
	}).Header
}

// lastDigitFlipped returns another hex digit than sig's last one.
func lastDigitFlipped(sig string) string {
	if sig[len(sig)-1] == '0' {
		return "1"
	}
	return "0"
}

// v1 returns one hex signature, to assemble headers by hand.
func v1(payload []byte, secret string, ts time.Time) string {
	return hex.EncodeToString(webhook.ComputeSignature(ts, payload, secret))
}

func TestVerify(t *testing.T) {
	event := readFixture(t, "event_account_updated.json")
	const eventID = "evt_1OaccountUpdated"
	ts := fmt.Sprint(webhookNow.Unix())
	goodSig := v1(event, testWebhookSecret, webhookNow)
	otherSig := v1(event, "whsec_someone_else", webhookNow)
	tampered := bytes.Replace(event, []byte(`"payouts_enabled": false`), []byte(`"payouts_enabled": true`), 1)
	if bytes.Equal(tampered, event) {
		t.Fatal("fixture changed: tampering found nothing to replace")
	}
	notJSON := []byte("this is not JSON, but it is signed")
	// Without its created time an event cannot be ordered against the state it would replace.
	undated := bytes.Replace(event, []byte(`"created": 1700000100,`), nil, 1)
	if bytes.Equal(undated, event) {
		t.Fatal("fixture changed: no created time to remove")
	}
	mismatchedAccount := bytes.Replace(event, []byte(`"id": "acct_1OexpressDE"`), []byte(`"id": "acct_1Oanother"`), 1)

	tests := []struct {
		name     string
		secrets  []string // default: testWebhookSecret alone
		payload  []byte
		header   string
		wantCode string // "" means the event verifies
	}{
		{name: "valid signature", payload: event, header: sign(event, testWebhookSecret, webhookNow)},
		{name: "missing header", payload: event, header: "", wantCode: codeSignature},
		{name: "blank header", payload: event, header: "  ", wantCode: codeSignature},
		{name: "garbage header", payload: event, header: "garbage", wantCode: codeSignature},
		{name: "non-numeric timestamp", payload: event, header: "t=abc,v1=" + goodSig, wantCode: codeSignature},
		{name: "negative timestamp", payload: event, header: "t=-1,v1=" + goodSig, wantCode: codeSignature},
		{name: "empty timestamp", payload: event, header: "t=,v1=" + goodSig, wantCode: codeSignature},
		{name: "no timestamp", payload: event, header: "v1=" + goodSig, wantCode: codeSignature},
		{name: "timestamp but no signature", payload: event, header: "t=" + ts, wantCode: codeSignature},
		{name: "stripe-go's bad header example", payload: event, header: "v1,t=1", wantCode: codeSignature},
		{name: "signature not hex", payload: event, header: "t=" + ts + ",v1=zz" + goodSig[2:], wantCode: codeSignature},
		{name: "signature truncated", payload: event, header: "t=" + ts + ",v1=" + goodSig[:62], wantCode: codeSignature},
		{
			name:     "v0 scheme only",
			payload:  event,
			header:   webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: event, Secret: testWebhookSecret, Timestamp: webhookNow, Scheme: "v0"}).Header,
			wantCode: codeSignature,
		},
		{name: "v0 alongside a valid v1", payload: event, header: "t=" + ts + ",v0=" + goodSig + ",v1=" + goodSig},
		{name: "wrong secret", payload: event, header: sign(event, "whsec_someone_else", webhookNow), wantCode: codeSignature},
		{name: "no secret configured", secrets: []string{}, payload: event, header: sign(event, testWebhookSecret, webhookNow), wantCode: codeSignature},
		{name: "an empty secret in the list verifies nothing", secrets: []string{"", testWebhookSecret}, payload: event, header: sign(event, "", webhookNow), wantCode: codeSignature},
		{name: "differs from the right signature in its last hex digit only", payload: event, header: "t=" + ts + ",v1=" + goodSig[:63] + lastDigitFlipped(goodSig), wantCode: codeSignature},
		{
			name:    "rotation: signed with the old secret",
			secrets: []string{testWebhookSecret, oldWebhookSecret},
			payload: event,
			header:  sign(event, oldWebhookSecret, webhookNow),
		},
		{
			name:    "rotation: signed with the new secret",
			secrets: []string{testWebhookSecret, oldWebhookSecret},
			payload: event,
			header:  sign(event, testWebhookSecret, webhookNow),
		},
		{
			name:     "rotation: signed with neither",
			secrets:  []string{testWebhookSecret, oldWebhookSecret},
			payload:  event,
			header:   sign(event, "whsec_someone_else", webhookNow),
			wantCode: codeSignature,
		},
		{name: "two v1 signatures, second matches", payload: event, header: "t=" + ts + ",v1=" + otherSig + ",v1=" + goodSig},
		{name: "two v1 signatures, first matches", payload: event, header: "t=" + ts + ",v1=" + goodSig + ",v1=" + otherSig},
		{name: "two v1 signatures, none matches", payload: event, header: "t=" + ts + ",v1=" + otherSig + ",v1=" + otherSig, wantCode: codeSignature},
		{
			name:     "signature made for another timestamp",
			payload:  event,
			header:   fmt.Sprintf("t=%d,v1=%s", webhookNow.Unix()+1, goodSig),
			wantCode: codeSignature,
		},
		{name: "stale: 301 s old", payload: event, header: sign(event, testWebhookSecret, webhookNow.Add(-301*time.Second)), wantCode: codeSignature},
		{name: "future: 301 s ahead", payload: event, header: sign(event, testWebhookSecret, webhookNow.Add(301*time.Second)), wantCode: codeSignature},
		{name: "299 s old", payload: event, header: sign(event, testWebhookSecret, webhookNow.Add(-299*time.Second))},
		// Stripe's libraries accept a signature exactly the tolerance old; so do we, either way.
		{name: "exactly 300 s old", payload: event, header: sign(event, testWebhookSecret, webhookNow.Add(-300*time.Second))},
		{name: "exactly 300 s ahead", payload: event, header: sign(event, testWebhookSecret, webhookNow.Add(300*time.Second))},
		{name: "299 s ahead", payload: event, header: sign(event, testWebhookSecret, webhookNow.Add(299*time.Second))},
		{name: "body tampered after signing", payload: tampered, header: sign(event, testWebhookSecret, webhookNow), wantCode: codeSignature},
		{name: "body extended after signing", payload: append(append([]byte{}, event...), ' '), header: sign(event, testWebhookSecret, webhookNow), wantCode: codeSignature},
		{name: "non-JSON body with a valid signature", payload: notJSON, header: sign(notJSON, testWebhookSecret, webhookNow), wantCode: codePayload},
		{
			name:     "an account object, not an event",
			payload:  readFixture(t, "not_an_event_account_object.json"),
			header:   sign(readFixture(t, "not_an_event_account_object.json"), testWebhookSecret, webhookNow),
			wantCode: codePayload,
		},
		{
			name:     "an id without the evt_ prefix",
			payload:  readFixture(t, "event_id_without_evt_prefix.json"),
			header:   sign(readFixture(t, "event_id_without_evt_prefix.json"), testWebhookSecret, webhookNow),
			wantCode: codePayload,
		},
		{
			name:     "account.updated for another account than the event's",
			payload:  mismatchedAccount,
			header:   sign(mismatchedAccount, testWebhookSecret, webhookNow),
			wantCode: codePayload,
		},
		{name: "an event without its created time", payload: undated, header: sign(undated, testWebhookSecret, webhookNow), wantCode: codePayload},
		{name: "JSON array", payload: []byte(`[]`), header: sign([]byte(`[]`), testWebhookSecret, webhookNow), wantCode: codePayload},
		{name: "JSON null", payload: []byte(`null`), header: sign([]byte(`null`), testWebhookSecret, webhookNow), wantCode: codePayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets := tt.secrets
			if secrets == nil {
				secrets = []string{testWebhookSecret}
			}
			v := stripeconnect.NewVerifier(secrets, fixedClock)

			ev, err := v.Verify(tt.payload, tt.header)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if ev.ID != eventID || ev.Type != onboarding.EventAccountUpdated {
					t.Errorf("event = %q %q, want %q account.updated", ev.ID, ev.Type, eventID)
				}
				return
			}
			assertInvalid(t, err, tt.wantCode)
		})
	}
}

func assertInvalid(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify accepted it, want %s", code)
	}
	e, ok := onboarding.AsError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not *onboarding.Error", err, err)
	}
	if e.Kind != onboarding.KindInvalid || e.Code != code {
		t.Errorf("error = kind %v code %q (%v), want KindInvalid %q", e.Kind, e.Code, err, code)
	}
}

func utc(sec int64) *time.Time {
	t := time.Unix(sec, 0).UTC()
	return &t
}

// normalizeTimes puts every time in UTC so that events compare with
// reflect.DeepEqual whatever zone the decoder used.
func normalizeTimes(ev onboarding.AccountEvent) onboarding.AccountEvent {
	ev.Created = ev.Created.UTC()
	fix := func(r *onboarding.Requirements) {
		if r != nil && r.CurrentDeadline != nil {
			d := r.CurrentDeadline.UTC()
			r.CurrentDeadline = &d
		}
	}
	if ev.State != nil {
		st := *ev.State
		fix(&st.Requirements)
		if st.FutureRequirements != nil {
			f := *st.FutureRequirements
			fix(&f)
			st.FutureRequirements = &f
		}
		ev.State = &st
	}
	return ev
}

// accountUpdatedState is the account in event_account_updated.json.
func accountUpdatedState() *onboarding.AccountState {
	return &onboarding.AccountState{
		DetailsSubmitted: true,
		ChargesEnabled:   true,
		PayoutsEnabled:   false,
		Requirements: onboarding.Requirements{
			CurrentlyDue:        []string{"external_account", "individual.verification.document"},
			EventuallyDue:       []string{"external_account", "individual.verification.document", "individual.id_number"},
			PastDue:             []string{"external_account"},
			PendingVerification: []string{"individual.address.city"},
			DisabledReason:      strp("requirements.past_due"),
			CurrentDeadline:     utc(1700604800),
		},
		FutureRequirements: &onboarding.Requirements{
			CurrentlyDue:        []string{},
			EventuallyDue:       []string{"individual.id_number"},
			PastDue:             []string{},
			PendingVerification: []string{},
			CurrentDeadline:     utc(1710000000),
		},
		Capabilities: map[string]string{"card_payments": "inactive", "transfers": "active"},
	}
}

func TestVerifyDecodes(t *testing.T) {
	tests := []struct {
		fixture string
		want    onboarding.AccountEvent
	}{
		{
			fixture: "event_account_updated.json",
			want: onboarding.AccountEvent{
				ID: "evt_1OaccountUpdated", Type: onboarding.EventAccountUpdated, Created: *utc(1700000100),
				AccountID: "acct_1OexpressDE", Livemode: false, APIVersion: "2023-10-16", APIVersionMismatch: false,
				State: accountUpdatedState(), Country: "DE", ServiceAgreement: "recipient", PlatformUserID: "user_42",
			},
		},
		{
			// Without the event's "account", the account is data.object's id.
			fixture: "event_account_updated_without_account_field.json",
			want: onboarding.AccountEvent{
				ID: "evt_1OaccountUpdatedNoAccount", Type: onboarding.EventAccountUpdated, Created: *utc(1700000100),
				AccountID: "acct_1OexpressDE", APIVersion: "2023-10-16",
				State: accountUpdatedState(), Country: "DE", ServiceAgreement: "recipient", PlatformUserID: "user_42",
			},
		},
		{
			// An endpoint pinned to an older API version: the fields used
			// kept their shape, so it decodes and is flagged.
			fixture: "event_account_updated_api_2020_08_27.json",
			want: onboarding.AccountEvent{
				ID: "evt_1OaccountUpdatedOldAPI", Type: onboarding.EventAccountUpdated, Created: *utc(1700000100),
				AccountID: "acct_1OexpressDE", APIVersion: "2020-08-27", APIVersionMismatch: true,
				State: accountUpdatedState(), Country: "DE", ServiceAgreement: "recipient", PlatformUserID: "user_42",
			},
		},
		{
			fixture: "event_capability_updated.json",
			want: onboarding.AccountEvent{
				ID: "evt_1OcapabilityUpdated", Type: onboarding.EventCapabilityUpdated, Created: *utc(1700000200),
				AccountID: "acct_1OexpressDE", Livemode: true, APIVersion: "2023-10-16",
				Capability: "transfers", CapabilityStatus: "active",
			},
		},
		{
			fixture: "event_account_application_deauthorized.json",
			want: onboarding.AccountEvent{
				ID: "evt_1OapplicationDeauthorized", Type: onboarding.EventAccountDeauthorized, Created: *utc(1700000300),
				AccountID: "acct_1OexpressDE", APIVersion: "2023-10-16",
			},
		},
		{
			fixture: "event_unknown_type.json",
			want: onboarding.AccountEvent{
				ID: "evt_1OpayoutPaid", Type: "payout.paid", Created: *utc(1700000400),
				AccountID: "acct_1OexpressDE", APIVersion: "2023-10-16",
			},
		},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.fixture, ".json"), func(t *testing.T) {
			payload := readFixture(t, tt.fixture)
			v := stripeconnect.NewVerifier([]string{testWebhookSecret}, fixedClock)

			ev, err := v.Verify(payload, sign(payload, testWebhookSecret, webhookNow))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got := normalizeTimes(ev)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("event:\n got  %s\n want %s", describe(got), describe(tt.want))
			}
		})
	}
}

func describe(ev onboarding.AccountEvent) string {
	s := fmt.Sprintf("%+v", ev)
	if ev.State != nil {
		s += fmt.Sprintf("\n   state %+v", *ev.State)
		if ev.State.Requirements.CurrentDeadline != nil {
			s += "\n   deadline " + ev.State.Requirements.CurrentDeadline.String()
		}
		if ev.State.Requirements.DisabledReason != nil {
			s += "\n   disabled_reason " + *ev.State.Requirements.DisabledReason
		}
		if ev.State.FutureRequirements != nil {
			s += fmt.Sprintf("\n   future %+v", *ev.State.FutureRequirements)
		}
	}
	return s
}

var eventFixtures = []string{
	"event_account_updated.json",
	"event_account_updated_without_account_field.json",
	"event_account_updated_api_2020_08_27.json",
	"event_capability_updated.json",
	"event_account_application_deauthorized.json",
	"event_unknown_type.json",
	"event_id_without_evt_prefix.json",
	"not_an_event_account_object.json",
}

// FuzzVerify: whatever arrives at the public webhook route, Verify returns
// an event or an *onboarding.Error of KindInvalid, and never panics. With
// sign set, the header is replaced by a valid one, so that the fuzzer gets
// past the signature into event decoding.
func FuzzVerify(f *testing.F) {
	ts := fmt.Sprint(webhookNow.Unix())
	for _, name := range eventFixtures {
		payload := readFixture(f, name)
		f.Add(payload, sign(payload, testWebhookSecret, webhookNow), false)
		f.Add(payload, sign(payload, oldWebhookSecret, webhookNow), false)
		f.Add(payload, "", true)
		f.Add(payload, sign(payload, testWebhookSecret, webhookNow.Add(-time.Hour)), false)
		f.Add(payload, "t="+ts+",v1="+v1(payload, testWebhookSecret, webhookNow)+",v1=00", false)
	}
	event := readFixture(f, "event_account_updated.json")
	for _, header := range []string{
		"", " ", "garbage", ",", ",,,", "=", "t=", "v1=", "t=abc,v1=..", "t=" + ts, "v1=" + v1(event, testWebhookSecret, webhookNow),
		"t=-1,v1=00", "t=0,v1=00", "t=99999999999999999999,v1=00", "t=9223372036854775807,v1=" + strings.Repeat("0", 64),
		"t=" + ts + ",v0=" + v1(event, testWebhookSecret, webhookNow), "t=" + ts + ",v1=" + strings.Repeat("zz", 32),
		"t=" + ts + ",t=1,v1=" + v1(event, testWebhookSecret, webhookNow),
	} {
		f.Add(event, header, false)
	}
	for _, body := range []string{
		"", "null", "[]", "{}", `"evt_1"`, `{"id":"evt_1","object":"event","type":"account.updated","created":1}`,
		`{"id":"evt_1","object":"event","type":"account.updated","created":1,"data":{"object":null}}`,
		`{"id":"evt_1","object":"event","type":"account.updated","created":1,"data":{"object":{"id":"acct_1","object":"account","metadata":{"platform_user_id":7}}}}`,
		`{"id":"evt_1","object":"event","type":"capability.updated","created":1,"data":{"object":{"id":"transfers","status":"active","account":{"id":"acct_1"}}}}`,
		`{"id":"evt_1","object":"event","type":"account.updated","created":1,"data":{"object":{"id":"acct_1","object":"account","requirements":{"current_deadline":-5,"disabled_reason":""}}}}`,
		`{"id":"evt_1","object":"event","type":"x","created":9223372036854775807}`,
	} {
		f.Add([]byte(body), "", true)
	}

	secrets := []string{testWebhookSecret, oldWebhookSecret}
	f.Fuzz(func(t *testing.T, payload []byte, header string, signIt bool) {
		if signIt {
			header = sign(payload, testWebhookSecret, webhookNow)
		}
		v := stripeconnect.NewVerifier(secrets, fixedClock)
		ev, err := v.Verify(payload, header)
		if err != nil {
			e, ok := onboarding.AsError(err)
			if !ok {
				t.Fatalf("error %v (%T) is not *onboarding.Error", err, err)
			}
			if e.Kind != onboarding.KindInvalid || (e.Code != codeSignature && e.Code != codePayload) {
				t.Fatalf("error = kind %v code %q, want KindInvalid invalid_signature|invalid_payload", e.Kind, e.Code)
			}
			return
		}
		if !strings.HasPrefix(ev.ID, "evt_") || ev.Type == "" || ev.Created.Unix() <= 0 {
			t.Fatalf("accepted an event without id, type or created: %+v", ev)
		}
		if ev.Type == onboarding.EventAccountUpdated && (ev.State == nil || ev.AccountID == "") {
			t.Fatalf("accepted account.updated without state or account: %+v", ev)
		}
		if ev.Type == onboarding.EventCapabilityUpdated && (ev.Capability == "" || ev.CapabilityStatus == "") {
			t.Fatalf("accepted capability.updated without capability or status: %+v", ev)
		}
	})
}

// Stripe sends a missing deadline as null; a 0 is no deadline either, not one in 1970 that the
// frontend would show as long passed.
func TestAZeroDeadlineIsNoDeadline(t *testing.T) {
	event := readFixture(t, "event_account_updated.json")
	zeroed := bytes.Replace(event, []byte(`"current_deadline": 1700604800`), []byte(`"current_deadline": 0`), 1)
	zeroed = bytes.Replace(zeroed, []byte(`"current_deadline": 1710000000`), []byte(`"current_deadline": 0`), 1)
	if bytes.Count(zeroed, []byte(`"current_deadline": 0`)) != 2 {
		t.Fatal("fixture changed: no deadlines to zero")
	}
	ev, err := stripeconnect.NewVerifier([]string{testWebhookSecret}, fixedClock).Verify(zeroed, sign(zeroed, testWebhookSecret, webhookNow))
	if err != nil {
		t.Fatal(err)
	}
	if d := ev.State.Requirements.CurrentDeadline; d != nil {
		t.Errorf("requirements.current_deadline 0 read as %v, want none", d)
	}
	if d := ev.State.FutureRequirements.CurrentDeadline; d != nil {
		t.Errorf("future_requirements.current_deadline 0 read as %v, want none", d)
	}
}

// A capability.updated event that does not name its account at the top (as Connect events
// always do today) still reaches the account the capability belongs to.
func TestACapabilityEventWithoutTheEventsAccountNamesTheCapabilitysAccount(t *testing.T) {
	event := readFixture(t, "event_capability_updated.json")
	bare := bytes.Replace(event, []byte("\"object\": \"event\",\n  \"account\": \"acct_1OexpressDE\","), []byte(`"object": "event",`), 1)
	if bytes.Equal(bare, event) {
		t.Fatal("fixture changed: no event-level account to remove")
	}
	ev, err := stripeconnect.NewVerifier([]string{testWebhookSecret}, fixedClock).Verify(bare, sign(bare, testWebhookSecret, webhookNow))
	if err != nil {
		t.Fatal(err)
	}
	if ev.AccountID != "acct_1OexpressDE" || ev.Capability != "transfers" || ev.CapabilityStatus != "active" {
		t.Fatalf("event for %q: %s %s, want acct_1OexpressDE's transfers active", ev.AccountID, ev.Capability, ev.CapabilityStatus)
	}
}

// A header whose timestamp is not a positive number is malformed, and Stripe's dashboard shows
// the sender that, not a complaint about a clock: t=0 is no time at all.
func TestATimestampOfZeroIsAMalformedHeader(t *testing.T) {
	event := readFixture(t, "event_account_updated.json")
	header := "t=0,v1=" + v1(event, testWebhookSecret, time.Unix(0, 0))
	_, err := stripeconnect.NewVerifier([]string{testWebhookSecret}, fixedClock).Verify(event, header)
	assertInvalid(t, err, codeSignature)
	if e, _ := onboarding.AsError(err); !strings.Contains(e.Message, "malformed") {
		t.Errorf("message %q, want that the header is malformed", e.Message)
	}
}

// Stripe shows tos_acceptance.service_agreement only for recipient accounts:
// a full-agreement account has none (absent; some renderings send null), and
// the event must still say full, as must every other way Stripe leaves it out.
func TestAServiceAgreementStripeLeavesOutIsFull(t *testing.T) {
	event := readFixture(t, "event_account_updated.json")
	const recipient = `"service_agreement": "recipient"`
	if !bytes.Contains(event, []byte(recipient)) {
		t.Fatal("fixture changed: no recipient agreement to replace")
	}
	for _, tt := range []struct {
		name, replacement, want string
	}{
		{"recipient, shown", recipient, "recipient"},
		{"full, shown", `"service_agreement": "full"`, "full"},
		{"left out", `"user_agent": null`, "full"},
		{"null", `"service_agreement": null`, "full"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Replace(event, []byte(recipient), []byte(tt.replacement), 1)
			ev, err := stripeconnect.NewVerifier([]string{testWebhookSecret}, fixedClock).Verify(body, sign(body, testWebhookSecret, webhookNow))
			if err != nil {
				t.Fatal(err)
			}
			if ev.ServiceAgreement != tt.want {
				t.Errorf("service agreement %q, want %q", ev.ServiceAgreement, tt.want)
			}
		})
	}
}
