package oauth

import (
	"context"
	"errors"
	"time"
)

// PersonalTokens issues, rotates and deactivates personal API tokens
// (the api_token endpoint). Each user has at most one.
type PersonalTokens struct {
	Store     PersonalTokenStore
	Validator *Validator
	// Scopes are granted to every personal token issued.
	Scopes []string
	// Metrics and Audit hear of every token issued or deactivated; nil
	// means none.
	Metrics Metrics
	Audit   Auditor
	Now     func() time.Time
}

// Issue activates or rotates userID's personal token: the new token is
// returned once and any earlier token stops working at once.
func (pt *PersonalTokens) Issue(ctx context.Context, userID string) (string, PersonalToken, error) {
	text, h, err := NewToken(KindPersonal)
	if err != nil {
		return "", PersonalToken{}, err
	}
	rec := PersonalToken{
		UserID:    userID,
		Hash:      h,
		Hint:      TokenHint(text),
		Scopes:    pt.Scopes,
		CreatedAt: pt.now().UTC().Truncate(time.Second),
	}
	metrics := metricsOrNone(pt.Metrics)
	start := time.Now()
	replaced, ok, err := pt.Store.ReplacePersonalToken(ctx, rec)
	timeStoreCall(metrics, OpPersonal, start)
	if err != nil {
		return "", PersonalToken{}, err
	}
	event := AuditPersonalActivated
	if ok {
		pt.Validator.Forget(replaced)
		event = AuditPersonalRotated
	}
	metrics.TokenIssued(GrantPersonal)
	auditorOrNone(pt.Audit).Audit(ctx, AuditEvent{Message: event, UserID: userID, Grant: GrantPersonal, Scopes: rec.Scopes})
	return text, rec, nil
}

// Deactivate removes userID's personal token; it reports whether there was one.
func (pt *PersonalTokens) Deactivate(ctx context.Context, userID string) (bool, error) {
	start := time.Now()
	h, ok, err := pt.Store.DeletePersonalToken(ctx, userID)
	timeStoreCall(metricsOrNone(pt.Metrics), OpPersonal, start)
	if err != nil || !ok {
		return false, err
	}
	pt.Validator.Forget(h)
	auditorOrNone(pt.Audit).Audit(ctx, AuditEvent{Message: AuditPersonalDeactivated, UserID: userID})
	return true, nil
}

// Status returns userID's personal token record; ok is false when the user
// has none.
func (pt *PersonalTokens) Status(ctx context.Context, userID string) (PersonalToken, bool, error) {
	rec, err := pt.Store.PersonalToken(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return PersonalToken{}, false, nil
	}
	if err != nil {
		return PersonalToken{}, false, err
	}
	return rec, true, nil
}

func (pt *PersonalTokens) now() time.Time {
	if pt.Now != nil {
		return pt.Now()
	}
	return time.Now()
}
