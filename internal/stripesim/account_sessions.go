package stripesim

// STAND-IN of i23-back's internal/stripesim/account_sessions.go, with the
// internal API both branches agreed on, so the Connect.js stand-in and the
// browser tests can be built before it lands. Dropped at merge in favour
// of i23-back's file.

import (
	"time"

	"github.com/stripe/stripe-go/v76"
)

// accountSession is an Account Session: its client secret authorises
// Connect embedded components for one account until expires (Unix s).
type accountSession struct {
	secret, accountID string
	expires           int64
	livemode          bool
	components        []string
}

// accountSessionTTL: a client secret is valid for 30 minutes.
const accountSessionTTL = 30 * time.Minute

var accountSessionSchema = map[string]*field{
	"account": str(),
	"components": hash(map[string]*field{
		"account_onboarding": hash(map[string]*field{"enabled": boolean()}),
	}),
	"expand": array(str()),
}

func (s *Sim) createAccountSession(req *request) (any, *apiError) {
	id, _ := req.params.str("account")
	a, err := s.lookup(id, req.livemode)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	as := &accountSession{secret: "accs_secret__" + randomID(40), accountID: a.id,
		expires: now.Add(accountSessionTTL).Unix(), livemode: req.livemode, components: []string{"account_onboarding"}}
	s.accountSessions[as.secret] = as
	return render(&stripe.AccountSession{Object: "account_session", Account: a.id, ClientSecret: as.secret,
		ExpiresAt: as.expires, Livemode: req.livemode}), nil
}

// accountSessionFor is called with s.mu held; false when the secret is
// unknown or expired, or the account is gone.
func (s *Sim) accountSessionFor(secret string) (*accountSession, *account, bool) {
	as, ok := s.accountSessions[secret]
	if !ok || s.opts.Now().Unix() >= as.expires {
		return nil, nil, false
	}
	a, ok := s.accounts[as.accountID]
	if !ok || a.deauthorized {
		return nil, nil, false
	}
	return as, a, true
}
