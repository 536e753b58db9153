package oauth

import (
	"errors"
	"strings"
	"testing"
)

func TestBearerTokenNoHeader(t *testing.T) {
	// No Authorization header is the only failure answered without
	// error="invalid_token".
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"SPEC3_nil_values", nil},
		{"SPEC3_empty_values", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := BearerToken(tc.values)
			if !errors.Is(err, ErrNoCredentials) || tok != "" {
				t.Fatalf("BearerToken(%q) = %q, %v; want ErrNoCredentials", tc.values, tok, err)
			}
		})
	}
}

func TestBearerTokenMoreThanOneHeader(t *testing.T) {
	// More than one Authorization header is refused as invalid_token.
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"SPEC3_two_different_values", []string{"Bearer abc", "Bearer def"}},
		{"SPEC3_two_identical_values", []string{"Bearer abc", "Bearer abc"}},
		{"SPEC3_valid_then_empty", []string{"Bearer abc", ""}},
		{"SPEC3_empty_then_valid", []string{"", "Bearer abc"}},
		{"SPEC3_three_values", []string{"Bearer a", "Bearer b", "Bearer c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := BearerToken(tc.values)
			if !errors.Is(err, ErrBadAuthorization) || tok != "" {
				t.Fatalf("BearerToken(%q) = %q, %v; want ErrBadAuthorization", tc.values, tok, err)
			}
		})
	}
}

func TestBearerTokenAccepts(t *testing.T) {
	real, _ := mustNewToken(t, KindAccess)
	for _, tc := range []struct {
		name, header, want string
	}{
		{"RFC6750_2.1_canonical", "Bearer x", "x"},
		{"RFC9110_11.1_scheme_lowercase", "bearer x", "x"},
		{"RFC9110_11.1_scheme_uppercase", "BEARER x", "x"},
		{"RFC9110_11.1_scheme_mixed_case_and_several_spaces", "BeArEr   x", "x"},
		{"SPEC3_one_or_more_spaces", "Bearer          " + real, real},
		{"SPEC2_real_token", "Bearer " + real, real},
		{"RFC9110_11.2_token68_all_punctuation", "Bearer a-._~+/b", "a-._~+/b"},
		{"RFC9110_11.2_token68_trailing_padding", "Bearer abc==", "abc=="},
		{"RFC9110_11.2_token68_digits_only", "Bearer 0123456789", "0123456789"},
		{"RFC9110_11.2_token68_single_char", "Bearer -", "-"},
		{"RFC9110_11.2_token68_long", "Bearer " + strings.Repeat("a", 8192), strings.Repeat("a", 8192)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := BearerToken([]string{tc.header})
			if err != nil || tok != tc.want {
				t.Fatalf("BearerToken(%q) = %q, %v; want %q, nil", tc.header, tok, err, tc.want)
			}
		})
	}
}

func TestBearerTokenRefuses(t *testing.T) {
	real, _ := mustNewToken(t, KindAccess)
	for _, tc := range []struct {
		name, header string
	}{
		{"SPEC3_empty_value", ""},
		{"RFC6750_2.1_scheme_alone", "Bearer"},
		{"RFC6750_2.1_scheme_lowercase_alone", "bearer"},
		{"RFC6750_2.1_trailing_space_only", "Bearer "},
		{"RFC6750_2.1_trailing_spaces_only", "Bearer     "},
		{"SPEC3_wrong_scheme_basic", "Basic abc"},
		{"SPEC3_wrong_scheme_basic_long", "Basic dXNlcjpwYXNzd29yZA=="},
		{"SPEC3_wrong_scheme_same_length", "Bearet abc"},
		{"SPEC3_wrong_scheme_token", "Token " + real},
		{"SPEC3_wrong_scheme_dpop", "DPoP " + real},
		{"SPEC3_scheme_prefix_only", "Bear abc"},
		{"SPEC3_token_without_scheme", real},
		{"RFC9110_11.1_no_space_after_scheme", "Bearerx"},
		{"RFC9110_11.1_no_space_before_real_token", "Bearer" + real},
		{"RFC9110_11.1_tab_after_scheme", "Bearer\tx"},
		{"RFC9110_11.1_colon_after_scheme", "Bearer:x"},
		{"RFC9110_11.1_comma_after_scheme", "Bearer,x"},
		{"RFC9110_11.1_nbsp_after_scheme", "Bearer\u00a0x"},
		{"RFC9110_11.1_leading_space", " Bearer x"},
		{"RFC9110_11.1_leading_tab", "\tBearer x"},
		{"RFC9110_11.1_cyrillic_e_in_scheme", "B\u0435arer x"},
		{"RFC9110_11.1_scheme_with_nul", "Bear\x00r x"},
		{"RFC9110_11.2_space_inside_token", "Bearer x y"},
		{"RFC9110_11.2_two_tokens", "Bearer " + real + " " + real},
		{"RFC9110_11.2_trailing_space", "Bearer x "},
		{"RFC9110_11.2_tab_inside_token", "Bearer x\ty"},
		{"RFC9110_11.2_trailing_tab", "Bearer x\t"},
		{"RFC9110_11.2_unicode_token", "Bearer t\u00f6k\u00e9n"},
		{"RFC9110_11.2_unicode_check_mark", "Bearer \u2713"},
		{"RFC9110_11.2_comma", "Bearer a,b"},
		{"RFC9110_11.2_semicolon", "Bearer a;b"},
		{"RFC9110_11.2_colon", "Bearer a:b"},
		{"RFC9110_11.2_quote", "Bearer \"abc\""},
		{"RFC9110_11.2_at_sign", "Bearer a@b"},
		{"RFC9110_11.2_percent_escape", "Bearer a%20b"},
		{"RFC9110_11.2_braces", "Bearer {abc}"},
		{"RFC9110_11.2_backslash", "Bearer a\\b"},
		{"RFC9110_11.2_nul", "Bearer a\x00b"},
		{"RFC9110_11.2_carriage_return", "Bearer a\rb"},
		{"RFC9110_11.2_newline", "Bearer a\nb"},
		{"RFC9110_11.2_del", "Bearer a\x7fb"},
		{"RFC9110_11.2_high_byte", "Bearer a\xffb"},
		{"RFC9110_11.2_auth_params", "Bearer realm=\"x\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := BearerToken([]string{tc.header})
			if !errors.Is(err, ErrBadAuthorization) || tok != "" {
				t.Fatalf("BearerToken(%q) = %q, %v; want ErrBadAuthorization", tc.header, tok, err)
			}
		})
	}
}

func TestBearerTokenErrorsAreDistinct(t *testing.T) {
	// The guard answers the two differently, so neither may wrap the other.
	if errors.Is(ErrNoCredentials, ErrBadAuthorization) || errors.Is(ErrBadAuthorization, ErrNoCredentials) {
		t.Fatal("ErrNoCredentials and ErrBadAuthorization must be distinct")
	}
}

// TestAccessTokenSchemes: RFC 9449 7.1, the DPoP scheme has the Bearer
// scheme's syntax; the scheme is reported also when what follows it is
// malformed, and BearerToken still takes Bearer alone.
func TestAccessTokenSchemes(t *testing.T) {
	real, _ := mustNewToken(t, KindAccess)
	for _, tc := range []struct {
		name, header string
		token        string
		scheme       Scheme
		ok           bool
	}{
		{"RFC6750_2.1_bearer", "Bearer " + real, real, SchemeBearer, true},
		{"RFC9449_7.1_dpop", "DPoP " + real, real, SchemeDPoP, true},
		{"RFC9110_11.1_dpop_any_case", "dpop " + real, real, SchemeDPoP, true},
		{"RFC9110_11.1_dpop_upper_case", "DPOP   " + real, real, SchemeDPoP, true},
		{"RFC9449_7.1_dpop_token68", "DPoP Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU", "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU", SchemeDPoP, true},
		{"RFC9449_7.1_dpop_alone", "DPoP", "", SchemeDPoP, false},
		{"RFC9449_7.1_dpop_spaces_only", "DPoP   ", "", SchemeDPoP, false},
		{"RFC9449_7.1_dpop_two_tokens", "DPoP a b", "", SchemeDPoP, false},
		{"RFC9449_7.1_dpop_comma", "DPoP a,b", "", SchemeDPoP, false},
		{"RFC9110_11.1_dpop_tab", "DPoP\tx", "", SchemeNone, false},
		{"RFC9110_11.1_dpop_no_space", "DPoPx", "", SchemeNone, false},
		{"RFC9110_11.1_kelvin_sign_is_not_k", "Bearer\u212a x", "", SchemeNone, false},
		{"RFC9110_11.1_other_scheme", "Basic abc", "", SchemeNone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, scheme, err := AccessToken([]string{tc.header})
			if tok != tc.token || scheme != tc.scheme || (err == nil) != tc.ok {
				t.Fatalf("AccessToken(%q) = %q, %v, %v; want %q, %v, ok %v", tc.header, tok, scheme, err, tc.token, tc.scheme, tc.ok)
			}
			if !tc.ok && !errors.Is(err, ErrBadAuthorization) {
				t.Fatalf("error %v, want ErrBadAuthorization", err)
			}
			if tc.ok && tc.scheme == SchemeDPoP {
				if tok, err := BearerToken([]string{tc.header}); err == nil || tok != "" {
					t.Fatalf("BearerToken took the DPoP scheme: %q, %v", tok, err)
				}
			}
		})
	}
	for _, values := range [][]string{nil, {"DPoP a", "DPoP a"}} {
		_, scheme, err := AccessToken(values)
		if scheme != SchemeNone || err == nil {
			t.Errorf("AccessToken(%q) = %v, %v", values, scheme, err)
		}
	}
}
