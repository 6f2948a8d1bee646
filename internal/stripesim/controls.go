package stripesim

import (
	"net/http"
	"strconv"
)

// MuteWebhooks stops (muted) or resumes the events of one account: its
// changes still happen, but no endpoint hears of them, as when deliveries
// fail for longer than Stripe retries them. What the reconciliation sweep
// heals.
func (s *Sim) MuteWebhooks(accountID string, muted bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[accountID]
	if !ok {
		return outcomeError("no such account " + accountID)
	}
	a.muted = muted
	return nil
}

// webhooksControl serves POST /_sim/accounts/{id}/webhooks with muted=true
// or muted=false:
//
//	curl -XPOST $SIM/_sim/accounts/acct_.../webhooks -d muted=true
func (s *Sim) webhooksControl(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, invalidRequest("expected form parameters").body())
		return
	}
	muted, err := strconv.ParseBool(r.PostForm.Get("muted"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, invalidParam("muted", "muted must be true or false").body())
		return
	}
	if err := s.MuteWebhooks(r.PathValue("id"), muted); err != nil {
		writeJSON(w, http.StatusNotFound, noSuchAccount(r.PathValue("id")).body())
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"muted":`+strconv.FormatBool(muted)+`}`))
}

// outcomeControl serves POST /_sim/accounts/{id}/outcome with outcome (and
// due for restricted): what the hosted onboarding page does, without a
// browser.
//
//	curl -XPOST $SIM/_sim/accounts/acct_.../outcome -d outcome=restricted -d due=past
func (s *Sim) outcomeControl(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, invalidRequest("expected form parameters").body())
		return
	}
	s.mu.Lock()
	a, ok := s.accounts[r.PathValue("id")]
	if !ok {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, noSuchAccount(r.PathValue("id")).body())
		return
	}
	err := s.applyOutcome(a, r.PostForm.Get("outcome"), r.PostForm.Get("due"), false)
	s.mu.Unlock()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, invalidParam("outcome", err.Error()).body())
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"outcome":"`+r.PostForm.Get("outcome")+`"}`))
}
