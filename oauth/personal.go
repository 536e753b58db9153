package oauth

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// PersonalTokens issues, rotates and deactivates personal API tokens
// (the api_token endpoint). Each user has at most one.
type PersonalTokens struct {
	Store     PersonalTokenStore
	Validator *Validator
	// Scopes are granted to every personal token issued.
	Scopes []string
	Logger *zap.Logger
	Now    func() time.Time
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
	replaced, ok, err := pt.Store.ReplacePersonalToken(ctx, rec)
	if err != nil {
		return "", PersonalToken{}, err
	}
	action := "activated"
	if ok {
		pt.Validator.Forget(replaced)
		action = "rotated"
	}
	pt.Logger.Info("personal token "+action, zap.String("user_id", userID), zap.String("hint", rec.Hint))
	return text, rec, nil
}

// Deactivate removes userID's personal token; it reports whether there was one.
func (pt *PersonalTokens) Deactivate(ctx context.Context, userID string) (bool, error) {
	h, ok, err := pt.Store.DeletePersonalToken(ctx, userID)
	if err != nil || !ok {
		return false, err
	}
	pt.Validator.Forget(h)
	pt.Logger.Info("personal token deactivated", zap.String("user_id", userID))
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
