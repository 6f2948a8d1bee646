package stripesim

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// stage is where an account is in the simulated onboarding.
type stage string

const (
	stageOnboarding stage = "onboarding" // details not submitted
	stageComplete   stage = "complete"   // everything verified
	stageDueSoon    stage = "due_soon"   // submitted, something due by a deadline
	stagePastDue    stage = "past_due"   // submitted, something overdue: disabled
	stagePending    stage = "pending"    // submitted, Stripe is verifying
	stageRejected   stage = "rejected"
	// stageHeld: submitted, and held by Stripe's own risk checks (Hold):
	// disabled, with disabled_reason under_review or listed.
	stageHeld stage = "held"
)

// heldReasons are the disabled_reasons Stripe gives an account its own risk
// checks hold, of those the 2023-10-16 spec lists for
// account_requirements.disabled_reason (and for a capability's):
// https://docs.stripe.com/api/accounts/object#account_object-requirements-disabled_reason
var heldReasons = []string{"under_review", "listed"}

// Disabled reasons of API version 2023-10-16 that stripe-go v76 names only
// in a comment.
const (
	reasonPastDue             stripe.AccountRequirementsDisabledReason = "requirements.past_due"
	reasonPendingVerification stripe.AccountRequirementsDisabledReason = "requirements.pending_verification"
)

// account is the simulator's state of one connected account.
type account struct {
	id            string
	created       int64
	livemode      bool
	country       string
	email         string
	businessType  string
	currency      string
	profile       map[string]string // business_profile fields
	requested     []string          // capabilities requested, sorted
	platformAdded []string          // capabilities the platform's Connect settings added: they stay inactive
	agreement     string            // tos_acceptance.service_agreement
	tos           map[string]string // tos_acceptance date, ip, user_agent
	metadata      map[string]string

	linked       bool // an Account Link or onboarding Account Session exists: Stripe locks KYC prefill
	stage        stage
	stageReason  string // disabled_reason when rejected or held, e.g. rejected.fraud, under_review
	deauthorized bool
	muted        bool  // its events reach no endpoint (MuteWebhooks)
	deadline     int64 // current_deadline while stage is due_soon
	// future lists what Stripe will need after a rule change
	// (future_requirements.currently_due), due by futureDeadline. Only a
	// link with collection_options[future_requirements]=include collects it.
	future         []string
	futureDeadline int64
	generation     int // bumps on every change, so stale timers do nothing

	// balances by currency, in minor units (SetBalance): a live-mode
	// reject needs them all zero.
	balances map[string]int64
}

func (a *account) submitted() bool { return a.stage != stageOnboarding }

// hasCapability reports whether name was requested.
func (a *account) hasCapability(name string) bool { return slices.Contains(a.requested, name) }

// capabilityStatus is Stripe's status of every requested capability.
func (a *account) capabilityStatus() string {
	switch a.stage {
	case stageComplete, stageDueSoon:
		return "active"
	case stagePending:
		return "pending"
	}
	return "inactive"
}

// onboardingFields is what Stripe collects before an account can work, by
// business type and requested capability, minus what the platform
// prefilled.
func (a *account) onboardingFields() []string {
	set := map[string]bool{"external_account": true, "tos_acceptance.date": true, "tos_acceptance.ip": true}
	if a.tos["date"] != "" && a.tos["ip"] != "" {
		delete(set, "tos_acceptance.date")
		delete(set, "tos_acceptance.ip")
	}
	add := func(fields ...string) {
		for _, f := range fields {
			set[f] = true
		}
	}
	switch a.businessType {
	case "":
		add("business_type")
	case "individual":
		add("individual.first_name", "individual.last_name", "individual.dob.day", "individual.dob.month", "individual.dob.year",
			"individual.address.line1", "individual.address.city", "individual.address.postal_code",
			"individual.email", "individual.phone")
		if a.country == "US" {
			add("individual.address.state", "individual.ssn_last_4")
		}
	default:
		add("company.name", "company.tax_id", "company.address.line1", "company.address.city", "company.address.postal_code",
			"company.phone", "representative.first_name", "representative.last_name", "representative.dob.day",
			"representative.dob.month", "representative.dob.year", "representative.email", "representative.phone",
			"representative.relationship.title")
		if a.businessType == "company" {
			add("owners.first_name", "owners.last_name", "company.owners_provided")
		}
	}
	// Stripe needs to know what the business does: a website, or a
	// description when there is none; and its category to take payments.
	if a.profile["url"] == "" && a.profile["product_description"] == "" {
		add("business_profile.url")
	}
	if a.hasCapability("card_payments") && a.profile["mcc"] == "" {
		add("business_profile.mcc")
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// verificationField is the document Stripe asks for after submission.
func (a *account) verificationField() string {
	if a.businessType == "individual" || a.businessType == "" {
		return "individual.verification.document"
	}
	return "representative.verification.document"
}

// futureField is what the simulated rule change asks for: a second
// document (Stripe's additional_document requirement).
func (a *account) futureField() string {
	return strings.TrimSuffix(a.verificationField(), "document") + "additional_document"
}

// expiredDocument is the error that says why the document is due again
// after submission: requirements.errors items have the shape of the spec's
// account_requirements_error, and verification_document_expired is one of
// its codes (stripe-mock v0.183.0 embedded/openapi/spec3.json,
// components.schemas.account_requirements_error; what each code means:
// https://docs.stripe.com/connect/handling-api-verification). Stripe's
// reason text is written for the account holder; the simulator's says what
// the code means.
func (a *account) expiredDocument() *stripe.AccountRequirementsError {
	return &stripe.AccountRequirementsError{
		Code:        "verification_document_expired",
		Reason:      "The document has expired. Upload a document that is still valid.",
		Requirement: a.verificationField(),
	}
}

// futureRequirements renders Stripe's future_requirements hash: empty, or
// the simulated rule change due by its deadline (Stripe lists what is
// currently due under eventually_due too).
func (a *account) futureRequirements() *stripe.AccountFutureRequirements {
	f := &stripe.AccountFutureRequirements{
		Alternatives: []*stripe.AccountFutureRequirementsAlternative{}, Errors: []*stripe.AccountFutureRequirementsError{},
		CurrentlyDue: []string{}, EventuallyDue: []string{}, PastDue: []string{}, PendingVerification: []string{},
	}
	if len(a.future) > 0 {
		f.CurrentlyDue, f.EventuallyDue = slices.Clone(a.future), slices.Clone(a.future)
		f.CurrentDeadline = a.futureDeadline
	}
	return f
}

// requirements renders Stripe's requirements hash for the current stage.
func (a *account) requirements() *stripe.AccountRequirements {
	r := &stripe.AccountRequirements{
		Alternatives: []*stripe.AccountRequirementsAlternative{}, Errors: []*stripe.AccountRequirementsError{},
		CurrentlyDue: []string{}, EventuallyDue: []string{}, PastDue: []string{}, PendingVerification: []string{},
	}
	doc := []string{a.verificationField()}
	switch a.stage {
	case stageOnboarding:
		// A new Express account is disabled until onboarding: what it needs
		// is due at once (past due), with no deadline.
		due := a.onboardingFields()
		r.CurrentlyDue, r.EventuallyDue, r.PastDue = due, due, due
		r.DisabledReason = reasonPastDue
	case stageDueSoon:
		r.CurrentlyDue, r.EventuallyDue = doc, doc
		r.CurrentDeadline = a.deadline
		r.Errors = []*stripe.AccountRequirementsError{a.expiredDocument()}
	case stagePastDue:
		r.CurrentlyDue, r.EventuallyDue, r.PastDue = doc, doc, doc
		r.DisabledReason = reasonPastDue
		r.Errors = []*stripe.AccountRequirementsError{a.expiredDocument()}
	case stagePending:
		r.PendingVerification = doc
		r.DisabledReason = reasonPendingVerification
	case stageRejected, stageHeld:
		r.DisabledReason = stripe.AccountRequirementsDisabledReason(a.stageReason)
	}
	return r
}

// object renders the account as Stripe's API returns it.
func (a *account) object() map[string]any {
	caps := map[string]stripe.AccountCapabilityStatus{}
	for _, c := range a.platformAdded {
		caps[c] = stripe.AccountCapabilityStatusInactive
	}
	for _, c := range a.requested {
		caps[c] = stripe.AccountCapabilityStatus(a.capabilityStatus())
	}
	enabled := a.stage == stageComplete || a.stage == stageDueSoon
	acct := &stripe.Account{
		ID:               a.id,
		Object:           "account",
		Type:             stripe.AccountTypeExpress,
		Country:          a.country,
		Created:          a.created,
		DefaultCurrency:  stripe.Currency(a.currency),
		DetailsSubmitted: a.submitted(),
		ChargesEnabled:   enabled && a.hasCapability("card_payments"),
		PayoutsEnabled:   enabled,
		Email:            a.email,
		BusinessType:     stripe.AccountBusinessType(a.businessType),
		Metadata:         a.metadata,
		BusinessProfile: &stripe.AccountBusinessProfile{
			MCC: a.profile["mcc"], Name: a.profile["name"], ProductDescription: a.profile["product_description"],
			SupportEmail: a.profile["support_email"], SupportPhone: a.profile["support_phone"],
			SupportURL: a.profile["support_url"], URL: a.profile["url"],
		},
		Requirements:       a.requirements(),
		FutureRequirements: a.futureRequirements(),
		TOSAcceptance:      &stripe.AccountTOSAcceptance{ServiceAgreement: stripe.AccountTOSAcceptanceServiceAgreement(a.agreement)},
		Controller: &stripe.AccountController{
			IsController: true, Type: stripe.AccountControllerTypeApplication,
			RequirementCollection: stripe.AccountControllerRequirementCollectionStripe,
		},
	}
	obj := render(acct)
	// stripe-go has a field for every capability; Stripe lists the requested ones.
	obj["capabilities"] = caps
	for _, key := range []string{"requirements", "future_requirements"} {
		if req, ok := obj[key].(map[string]any); ok {
			if d, ok := req["current_deadline"].(float64); ok && d == 0 {
				req["current_deadline"] = nil
			}
		}
	}
	if a.metadata == nil {
		obj["metadata"] = map[string]string{}
	}
	// Fields Stripe sends only once they are set, which the simulator never
	// does (optional in spec3.json's account_business_profile, 2023-10-16).
	if bp, ok := obj["business_profile"].(map[string]any); ok {
		for _, key := range []string{"annual_revenue", "estimated_worker_count", "monthly_estimated_revenue"} {
			delete(bp, key)
		}
	}
	// Fields stripe-go v76 has from later API versions: at 2023-10-16 the
	// controller is is_controller and type only (spec3.json,
	// components.schemas.account_unification_account_controller).
	if c, ok := obj["controller"].(map[string]any); ok {
		for _, key := range []string{"fees", "losses", "requirement_collection", "stripe_dashboard"} {
			delete(c, key)
		}
	}
	if tos, ok := obj["tos_acceptance"].(map[string]any); ok {
		if d, ok := tos["date"].(float64); ok && d == 0 {
			tos["date"] = nil
		}
		// Stripe shows the agreement only when it is recipient: absent for
		// full, its default (API reference, Account object, 2023-10-16; the
		// spec types it as a string never null, spec3.json
		// components.schemas.account_tos_acceptance, and stripe-mock's
		// account fixture has none).
		if a.agreement != "recipient" {
			delete(tos, "service_agreement")
		}
	}
	// Stripe omits what it no longer shows to the platform after onboarding
	// started; the simulator keeps it simple and never sends these.
	for _, key := range []string{"company", "individual", "external_accounts", "settings", "deleted"} {
		delete(obj, key)
	}
	return obj
}

func (s *Sim) newAccountID() string { return "acct_1" + randomID(15) }

// lookup finds an account the caller's key can reach.
func (s *Sim) lookup(id string, livemode bool) (*account, *apiError) {
	a, ok := s.accounts[id]
	if !ok || a.livemode != livemode || a.deauthorized {
		return nil, noAccess(id)
	}
	return a, nil
}

func (s *Sim) createAccount(req *request) (any, *apiError) {
	p := req.params
	if t, _ := p.str("type"); t != string(stripe.AccountTypeExpress) {
		if t == "" {
			return nil, &apiError{status: 400, typ: typeInvalidRequest, code: "parameter_missing", param: "type",
				message: "Missing required param: type."}
		}
		return nil, invalidParam("type", "The local Stripe simulator supports Express accounts (type=express) only.")
	}
	country, ok := p.str("country")
	if !ok {
		country = "US" // Stripe defaults to the platform's country
	}
	if !slices.Contains(onboarding.SupportedCountries(), country) {
		// Stripe's exact wording for an unsupported country is not known here.
		return nil, invalidParam("country", "Country '"+country+"' is unknown. Try using a 2-character alphanumeric "+
			"country code instead, such as 'US', 'EG', or 'GB'. A full list of country codes is available at "+
			"https://stripe.com/docs/connect/express-accounts.")
	}
	a := &account{
		id: s.newAccountID(), created: s.opts.Now().Unix(), livemode: req.livemode, country: country,
		currency: defaultCurrency(country), profile: map[string]string{}, tos: map[string]string{},
		metadata: map[string]string{}, stage: stageOnboarding, agreement: "full",
	}
	if err := s.applyAccountParams(a, p, true); err != nil {
		return nil, err
	}
	if len(a.requested) == 0 {
		// No capabilities requested: Stripe applies the platform's Connect
		// settings; the simulator's platform asks for what the agreement allows.
		a.requested = []string{"card_payments", "transfers"}
		if a.agreement == "recipient" {
			a.requested = []string{"transfers"}
		}
	}
	if a.agreement == "recipient" && a.hasCapability("card_payments") {
		return nil, invalidParam("tos_acceptance[service_agreement]",
			"Accounts with the `recipient` service agreement cannot request the `card_payments` capability.")
	}
	if a.hasCapability("card_payments") && !a.hasCapability("transfers") {
		// Stripe refuses this; its exact wording is not known here.
		return nil, invalidParam("capabilities",
			"In order to request the `card_payments` capability for an Express account, you must also request the `transfers` capability.")
	}
	if err := s.checkTransfersOnly(a); err != nil {
		return nil, err
	}
	if a.agreement == "full" {
		// The platform's Connect settings add payment methods to accounts
		// that can take payments; a recipient takes none.
		a.platformAdded = slices.Clone(s.opts.PlatformCapabilities)
	}
	s.accounts[a.id] = a
	s.accountOrder = append(s.accountOrder, a.id)
	s.opts.Logger.Info("stripesim: account created", "account", a.id)
	return a.object(), nil
}

// kycParams are the parameters Stripe stops taking from the platform once
// an Account Link exists: the account holder owns them from then on.
var kycParams = []string{"business_profile", "business_type", "email", "tos_acceptance"}

// applyAccountParams copies create or update parameters onto a.
func (s *Sim) applyAccountParams(a *account, p *param, create bool) *apiError {
	if !create && a.linked {
		// The simulator's own wording: Stripe's answer to this is not known here.
		for _, name := range kycParams {
			if p.child(name) != nil {
				return invalidParam(name, "You cannot update `"+name+"` on this Express account: an Account Link or Account "+
					"Session was created for it, so its holder now provides this information to Stripe during onboarding.")
			}
		}
	}
	if v, ok := p.str("email"); ok {
		a.email = v
	}
	if v, ok := p.str("business_type"); ok {
		a.businessType = v
	}
	if v, ok := p.str("default_currency"); ok {
		a.currency = strings.ToLower(v)
	}
	mergeHash(a.profile, p, "business_profile")
	for _, k := range []string{"date", "ip", "user_agent"} {
		if v, ok := p.str("tos_acceptance", k); ok {
			a.tos[k] = v
		}
	}
	if v, ok := p.str("tos_acceptance", "service_agreement"); ok {
		if !create && v != a.agreement {
			return invalidParam("tos_acceptance[service_agreement]", "The service agreement of an account cannot be changed.")
		}
		a.agreement = v
	}
	if v, ok := p.str("metadata"); ok && v == "" {
		a.metadata = map[string]string{}
	}
	mergeHash(a.metadata, p, "metadata")
	for _, c := range p.keys("capabilities") {
		requested, ok := p.boolean("capabilities", c, "requested")
		switch {
		case !ok:
		case requested && !a.hasCapability(c):
			a.requested = append(a.requested, c)
		case !requested:
			a.requested = slices.DeleteFunc(a.requested, func(x string) bool { return x == c })
		}
	}
	sort.Strings(a.requested)
	return nil
}

// mergeHash applies the hash parameter name to dst as Stripe does: each
// key given is set, and a key given empty is removed.
func mergeHash(dst map[string]string, p *param, name string) {
	for _, k := range p.keys(name) {
		if v, _ := p.str(name, k); v == "" {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
}

func defaultCurrency(country string) string {
	switch country {
	case "US":
		return "usd"
	case "GB":
		return "gbp"
	case "CA":
		return "cad"
	case "AU":
		return "aud"
	case "JP":
		return "jpy"
	case "CH":
		return "chf"
	}
	return "eur"
}

func (s *Sim) retrieveAccount(req *request) (any, *apiError) {
	a, err := s.lookup(req.r.PathValue("id"), req.livemode)
	if err != nil {
		return nil, err
	}
	return a.object(), nil
}

func (s *Sim) updateAccount(req *request) (any, *apiError) {
	a, err := s.lookup(req.r.PathValue("id"), req.livemode)
	if err != nil {
		return nil, err
	}
	// Work on a copy, so a refused update changes nothing.
	next := a.clone()
	if err := s.applyAccountParams(next, req.params, false); err != nil {
		return nil, err
	}
	if next.agreement == "recipient" && next.hasCapability("card_payments") {
		return nil, invalidParam("capabilities",
			"Accounts with the `recipient` service agreement cannot request the `card_payments` capability.")
	}
	if err := s.checkTransfersOnly(next); err != nil {
		return nil, err
	}
	*a = *next
	a.generation++
	s.emitAccountChange(a, false)
	return a.object(), nil
}

// checkTransfersOnly refuses transfers without card_payments under the
// full agreement unless Stripe approved the platform for it.
func (s *Sim) checkTransfersOnly(a *account) *apiError {
	if a.agreement != "recipient" && a.hasCapability("transfers") && !a.hasCapability("card_payments") && !s.opts.TransfersOnlyApproved {
		return transfersWithoutCardPayments()
	}
	return nil
}

func (a *account) clone() *account {
	c := *a
	c.profile, c.tos, c.metadata = cloneMap(a.profile), cloneMap(a.tos), cloneMap(a.metadata)
	c.requested = slices.Clone(a.requested)
	c.future = slices.Clone(a.future)
	c.platformAdded = slices.Clone(a.platformAdded)
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

var rejectReasons = []string{"fraud", "terms_of_service", "other"}

func (s *Sim) rejectAccount(req *request) (any, *apiError) {
	a, err := s.lookup(req.r.PathValue("id"), req.livemode)
	if err != nil {
		return nil, err
	}
	reason, _ := req.params.str("reason")
	if !slices.Contains(rejectReasons, reason) {
		return nil, invalidParam("reason", "Invalid reason: must be one of "+oneOf(rejectReasons))
	}
	if a.stage == stageRejected {
		return nil, alreadyRejected(a.id)
	}
	if refusal := s.balanceRefusal(a); refusal != nil {
		return nil, refusal
	}
	s.setStage(a, stageRejected, "rejected."+reason)
	return a.object(), nil
}

// setStage moves an account to a new stage and tells the Connect endpoints.
func (s *Sim) setStage(a *account, st stage, stageReason string) {
	s.changeStage(a, st, stageReason)
	s.emitAccountChange(a, true)
}

// changeStage is setStage without the events.
func (s *Sim) changeStage(a *account, st stage, stageReason string) {
	a.stage, a.stageReason, a.deadline = st, stageReason, 0
	if st != stageOnboarding && a.businessType == "" {
		// The holder answered what the platform did not prefill.
		a.businessType = "individual"
	}
	if st == stageDueSoon {
		a.deadline = s.opts.Now().Add(7 * 24 * time.Hour).Unix()
	}
	a.generation++
}

func (s *Sim) listAccounts(req *request) (any, *apiError) {
	p := req.params
	limit, err := listLimit(p)
	if err != nil {
		return nil, err
	}
	created := createdFilter(p)
	var all []*account
	for i := len(s.accountOrder) - 1; i >= 0; i-- { // newest first, as Stripe lists
		a := s.accounts[s.accountOrder[i]]
		if a.livemode != req.livemode || a.deauthorized || !created(a.created) {
			continue
		}
		all = append(all, a)
	}
	ids := make([]string, len(all))
	for i, a := range all {
		ids[i] = a.id
	}
	from, to, perr := page(ids, p, limit, "account")
	if perr != nil {
		return nil, perr
	}
	data := make([]any, 0, to-from)
	for _, a := range all[from:to] {
		data = append(data, a.object())
	}
	return listObject("/v1/accounts", data, hasMore(ids, p, from, to)), nil
}

func listLimit(p *param) (int, *apiError) {
	limit := int64(10)
	if v, ok := p.int("limit"); ok {
		limit = v
	}
	// Stripe's range messages: "greater than or equal to 1." is verbatim
	// (its answer to a zero amount, quoted in public tests); the upper bound's
	// wording is assumed by analogy.
	if limit < 1 {
		return 0, invalidParam("limit", "This value must be greater than or equal to 1.")
	}
	if limit > 100 {
		return 0, invalidParam("limit", "This value must be less than or equal to 100.")
	}
	return int(limit), nil
}

// createdFilter reads created=<ts> or created[gt|gte|lt|lte]=<ts>.
func createdFilter(p *param) func(int64) bool {
	if v, ok := p.int("created"); ok {
		return func(c int64) bool { return c == v }
	}
	checks := []func(int64) bool{}
	if v, ok := p.int("created", "gt"); ok {
		checks = append(checks, func(c int64) bool { return c > v })
	}
	if v, ok := p.int("created", "gte"); ok {
		checks = append(checks, func(c int64) bool { return c >= v })
	}
	if v, ok := p.int("created", "lt"); ok {
		checks = append(checks, func(c int64) bool { return c < v })
	}
	if v, ok := p.int("created", "lte"); ok {
		checks = append(checks, func(c int64) bool { return c <= v })
	}
	return func(c int64) bool {
		for _, ok := range checks {
			if !ok(c) {
				return false
			}
		}
		return true
	}
}

// page cuts a list by starting_after / ending_before and limit, as Stripe's
// cursor pagination does.
func page(ids []string, p *param, limit int, object string) (from, to int, err *apiError) {
	from, to = 0, len(ids)
	if after, ok := p.str("starting_after"); ok {
		i := slices.Index(ids, after)
		if i < 0 {
			return 0, 0, &apiError{status: http.StatusBadRequest, typ: typeInvalidRequest, code: "resource_missing",
				param: "starting_after", message: "No such " + object + ": '" + after + "'"}
		}
		from = i + 1
	}
	if before, ok := p.str("ending_before"); ok {
		i := slices.Index(ids, before)
		if i < 0 {
			return 0, 0, &apiError{status: http.StatusBadRequest, typ: typeInvalidRequest, code: "resource_missing",
				param: "ending_before", message: "No such " + object + ": '" + before + "'"}
		}
		to = i
		if to-from > limit {
			from = to - limit
		}
	}
	if from > to {
		from = to
	}
	if to-from > limit {
		to = from + limit
	}
	return from, to, nil
}

func hasMore(ids []string, p *param, from, to int) bool {
	if _, ok := p.str("ending_before"); ok {
		return from > 0
	}
	return to < len(ids)
}

func listObject(path string, data []any, more bool) map[string]any {
	return map[string]any{"object": "list", "url": path, "has_more": more, "data": data}
}
