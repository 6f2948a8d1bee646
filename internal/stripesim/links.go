package stripesim

import (
	"net/url"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// accountLink is a single-use onboarding URL that expires after LinkTTL.
type accountLink struct {
	token      string
	accountID  string
	refreshURL string
	returnURL  string
	collect    string
	// includeFuture: collection_options[future_requirements]=include. Stripe's
	// default, omit, leaves future requirements out of the hosted flow.
	includeFuture bool
	expires       time.Time
	used          bool
}

// session is one visit to the hosted onboarding page: the link is spent
// when the page is shown, and the page's form carries the session.
type session struct {
	id        string
	accountID string
	returnURL string
	// includeFuture comes from the link: finishing collects the account's
	// future requirements too.
	includeFuture bool
	expires       time.Time
	used          bool
}

// loginLink opens the simulated Express Dashboard once.
type loginLink struct {
	token     string
	accountID string
	expires   time.Time
	used      bool
}

// sessionTTL bounds how long an onboarding page may stay open.
const sessionTTL = time.Hour

func (s *Sim) createAccountLink(req *request) (any, *apiError) {
	p := req.params
	id, _ := p.str("account")
	a, err := s.lookup(id, req.livemode)
	if err != nil {
		return nil, err
	}
	if typ, _ := p.str("type"); typ == "account_update" {
		// Stripe refuses it for Express accounts; its exact wording is not
		// known here.
		return nil, invalidParam("type", "You cannot create `account_update` type Account Links for Express accounts. "+
			"Use `account_onboarding`, or send the account holder to the Express Dashboard through a login link.")
	}
	links := map[string]string{}
	for _, name := range []string{"refresh_url", "return_url"} {
		v, ok := p.str(name)
		if !ok {
			return nil, &apiError{status: 400, typ: typeInvalidRequest, code: "parameter_missing", param: name,
				message: "Missing required param: " + name + "."}
		}
		u, perr := url.Parse(v)
		if perr != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, &apiError{status: 400, typ: typeInvalidRequest, code: "url_invalid", param: name,
				message: "Not a valid URL"}
		}
		if req.livemode && u.Scheme != "https" {
			// Stripe's words, verbatim.
			return nil, &apiError{status: 400, typ: typeInvalidRequest, code: "url_invalid", param: name,
				message: "Livemode requests must always be redirected via HTTPS."}
		}
		links[name] = v
	}
	collect := "currently_due"
	if v, ok := p.str("collect"); ok {
		collect = v
	}
	if v, ok := p.str("collection_options", "fields"); ok {
		collect = v
	}
	// "omit" is the default: https://docs.stripe.com/api/account_links/create?api-version=2023-10-16
	// (collection_options.future_requirements); the schema admits include or omit.
	future, _ := p.str("collection_options", "future_requirements")
	now := s.opts.Now()
	l := &accountLink{
		token: randomID(24), accountID: a.id, refreshURL: links["refresh_url"], returnURL: links["return_url"],
		collect: collect, includeFuture: future == "include", expires: now.Add(s.opts.LinkTTL),
	}
	s.links[l.token] = l
	a.linked = true
	return render(&stripe.AccountLink{
		Object: "account_link", Created: now.Unix(), ExpiresAt: l.expires.Unix(),
		URL: s.opts.PublicURL + "/setup/e/" + a.id + "/" + l.token,
	}), nil
}

func (s *Sim) createLoginLink(req *request) (any, *apiError) {
	a, err := s.lookup(req.r.PathValue("id"), req.livemode)
	if err != nil {
		return nil, err
	}
	if !a.submitted() {
		// Stripe's words, verbatim as integrations match on them.
		return nil, invalidParam("account", "Cannot create a login link for an account that has not completed onboarding.")
	}
	now := s.opts.Now()
	l := &loginLink{token: randomID(24), accountID: a.id, expires: now.Add(s.opts.LinkTTL)}
	s.loginLinks[l.token] = l
	return render(&stripe.LoginLink{
		Object: "login_link", Created: now.Unix(), URL: s.opts.PublicURL + "/express/" + a.id + "/" + l.token,
	}), nil
}

// LinkInfo describes an account link the simulator handed out.
type LinkInfo struct {
	AccountID  string
	RefreshURL string
	ReturnURL  string
	ExpiresAt  time.Time
	Used       bool
	// Collect is collection_options[fields] (or the deprecated collect),
	// currently_due by default.
	Collect string
	// IncludesFutureRequirements: collection_options[future_requirements]=include.
	IncludesFutureRequirements bool
}

// Link looks up an account link by its URL, so tests can follow the
// refresh_url Stripe would send the browser to.
func (s *Sim) Link(linkURL string) (LinkInfo, bool) {
	u, err := url.Parse(linkURL)
	if err != nil {
		return LinkInfo{}, false
	}
	token := lastSegment(u.Path)
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.links[token]
	if !ok {
		return LinkInfo{}, false
	}
	return LinkInfo{AccountID: l.accountID, RefreshURL: l.refreshURL, ReturnURL: l.returnURL, ExpiresAt: l.expires, Used: l.used,
		Collect: l.collect, IncludesFutureRequirements: l.includeFuture}, true
}

func lastSegment(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}
