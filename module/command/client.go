package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

const clientsPath = "/tokengate/clients"

// clientObject is a client as the admin API answers it. ClientSecret is
// there only in the answer to a POST.
type clientObject struct {
	ClientID     string   `json:"client_id"`
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirect_uris"`
	Scopes       []string `json:"scopes"`
	Public       bool     `json:"public"`
	PKCE         string   `json:"pkce"`
	GrantTypes   []string `json:"grant_types"`
	Source       string   `json:"source"`
	CreatedAt    *string  `json:"created_at"`
	ClientSecret string   `json:"client_secret,omitempty"`
}

// newClientBody is the body of POST /tokengate/clients. Fields left at
// their zero value are left out, so the server's defaults apply.
type newClientBody struct {
	ClientID     string   `json:"client_id,omitempty"`
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	Public       bool     `json:"public,omitempty"`
	PKCE         string   `json:"pkce,omitempty"`
	GrantTypes   []string `json:"grant_types,omitempty"`
}

// secretWarning goes to stderr, so stdout stays what the API said.
const secretWarning = "Store this client secret now: it is shown only once and cannot be retrieved later."

func clientPath(id string) string {
	return clientsPath + "/" + url.PathEscape(id)
}

func clientAddCommand() *cobra.Command {
	var body newClientBody
	var pkceOptional bool
	cmd := &cobra.Command{
		Use:   "add --name <name> --redirect-uri <uri>... [--id <id>] [--scope <scope>]... [--public] [--pkce-optional] [--grant-types <type>,...]",
		Short: "Adds a client and prints it with its secret",
		Long: `Adds an OAuth client to the database (POST /tokengate/clients).

--redirect-uri and --scope repeat, one value each time. Without --id the
server picks the client id; without --scope the client may ask for every
declared scope. A public client (--public) has no secret and must always
use PKCE; --pkce-optional lets a confidential client do without it.

--grant-types lists the grants the client may use, comma-separated or
repeated: authorization_code, refresh_token, client_credentials (a
confidential client acting for itself) and
urn:ietf:params:oauth:grant-type:device_code; default authorization_code
and refresh_token. A client without authorization_code needs no
--redirect-uri.

Prints the client and, for a confidential client, its secret. The secret
is shown only this once: store it before anything else.`,
		Example: `  caddy tokengate client add --id billing --name "Billing" \
      --redirect-uri https://billing.example.com/callback \
      --scope energy:read --scope sessions:read
  caddy tokengate client add --id meter-sync --name "Meter sync" \
      --grant-types client_credentials --scope energy:read`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cli, _ []string) error {
			if len(body.RedirectURIs) == 0 && (len(body.GrantTypes) == 0 || slices.Contains(body.GrantTypes, "authorization_code")) {
				return errors.New("--redirect-uri is required unless --grant-types leaves out authorization_code")
			}
			if pkceOptional {
				body.PKCE = "optional"
			}
			answer, err := c.api.call(http.MethodPost, clientsPath, body)
			if err != nil {
				return err
			}
			var added clientObject
			decodeErr := json.Unmarshal(answer, &added)
			if c.json {
				err = c.printRaw(answer)
			} else if decodeErr != nil {
				return fmt.Errorf("decoding the admin API's answer: %w", decodeErr)
			} else {
				err = printClient(c.stdout, added, true)
			}
			if err != nil {
				return err
			}
			if added.ClientSecret != "" {
				fmt.Fprintln(c.stderr, secretWarning)
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&body.ClientID, "id", "", "Client id (default: one the server generates)")
	f.StringVar(&body.Name, "name", "", "Name shown to users on the consent page (required)")
	f.StringArrayVar(&body.RedirectURIs, "redirect-uri", nil, "Allowed redirect URI; repeat for more than one (required for authorization_code)")
	f.StringArrayVar(&body.Scopes, "scope", nil, "Scope the client may ask for; repeat for more than one (default: every declared scope)")
	f.BoolVar(&body.Public, "public", false, "Public client: no secret, PKCE always required")
	f.BoolVar(&pkceOptional, "pkce-optional", false, "Let a confidential client do without PKCE")
	f.StringSliceVar(&body.GrantTypes, "grant-types", nil, "Grant types the client may use, comma-separated (default: authorization_code,refresh_token)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func clientListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Lists every client, one a line",
		Long: `Lists the clients of the Caddyfile (source config) and of the database
(source store), sorted by id (GET /tokengate/clients): one line a client
with its id, name, type (public or confidential), source and scopes.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cli, _ []string) error {
			answer, err := c.api.call(http.MethodGet, clientsPath, nil)
			if err != nil {
				return err
			}
			if c.json {
				return c.printRaw(answer)
			}
			var clients []clientObject
			if err := json.Unmarshal(answer, &clients); err != nil {
				return fmt.Errorf("decoding the admin API's answer: %w", err)
			}
			if len(clients) == 0 {
				fmt.Fprintln(c.stderr, "No clients.")
				return nil
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tTYPE\tSOURCE\tSCOPES")
			for _, cl := range clients {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", orDash(cl.ClientID), orDash(cl.Name),
					clientType(cl), orDash(cl.Source), scopeList(cl.Scopes))
			}
			return tw.Flush()
		}),
	}
}

func clientGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get <id>",
		Short: "Prints one client",
		Long:  `Prints the client with the given id (GET /tokengate/clients/<id>).`,
		Args:  cobra.ExactArgs(1),
		RunE: run(func(c *cli, args []string) error {
			if err := nonEmpty("the client id", args[0]); err != nil {
				return err
			}
			answer, err := c.api.call(http.MethodGet, clientPath(args[0]), nil)
			if err != nil {
				return err
			}
			if c.json {
				return c.printRaw(answer)
			}
			var cl clientObject
			if err := json.Unmarshal(answer, &cl); err != nil {
				return fmt.Errorf("decoding the admin API's answer: %w", err)
			}
			return printClient(c.stdout, cl, false)
		}),
	}
}

func clientRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove <id>",
		Short: "Deletes a stored client",
		Long: `Deletes the stored client with the given id (DELETE /tokengate/clients/<id>).
Its authorization codes, its refresh tokens and the tokens it holds for
itself (client_credentials) stop working at once, on every instance; the
access tokens issued for users run out. A client defined in
the Caddyfile cannot be removed here: take it out of the Caddyfile.`,
		Args: cobra.ExactArgs(1),
		RunE: run(func(c *cli, args []string) error {
			if err := nonEmpty("the client id", args[0]); err != nil {
				return err
			}
			answer, err := c.api.call(http.MethodDelete, clientPath(args[0]), nil)
			if err != nil {
				return err
			}
			if c.json {
				return c.printRaw(answer)
			}
			_, err = fmt.Fprintf(c.stdout, "Removed client %s.\n", printable(args[0]))
			return err
		}),
	}
}

func clientRotateSecretCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-secret <id>",
		Short: "Gives a stored client a new secret and prints it",
		Long: `Gives the stored confidential client with the given id a new secret
(POST /tokengate/clients/<id>/secret) and prints it. The old secret stops
working at once. The new one is shown only this once.`,
		Args: cobra.ExactArgs(1),
		RunE: run(func(c *cli, args []string) error {
			if err := nonEmpty("the client id", args[0]); err != nil {
				return err
			}
			answer, err := c.api.call(http.MethodPost, clientPath(args[0])+"/secret", nil)
			if err != nil {
				return err
			}
			if c.json {
				err = c.printRaw(answer)
			} else {
				var rotated struct {
					ClientID     string `json:"client_id"`
					ClientSecret string `json:"client_secret"`
				}
				if err := json.Unmarshal(answer, &rotated); err != nil {
					return fmt.Errorf("decoding the admin API's answer: %w", err)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
				fmt.Fprintf(tw, "client_id\t%s\n", printable(rotated.ClientID))
				fmt.Fprintf(tw, "client_secret\t%s\n", printable(rotated.ClientSecret))
				err = tw.Flush()
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stderr, "The old secret no longer works. "+secretWarning)
			return nil
		}),
	}
}

// printClient writes one client as aligned "field value" lines, the
// secret last when withSecret and the answer has one.
func printClient(w io.Writer, cl clientObject, withSecret bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "client_id\t%s\n", orDash(cl.ClientID))
	fmt.Fprintf(tw, "name\t%s\n", orDash(cl.Name))
	fmt.Fprintf(tw, "type\t%s\n", clientType(cl))
	fmt.Fprintf(tw, "pkce\t%s\n", orDash(cl.PKCE))
	fmt.Fprintf(tw, "source\t%s\n", orDash(cl.Source))
	created := ""
	if cl.CreatedAt != nil {
		created = *cl.CreatedAt
	}
	fmt.Fprintf(tw, "created_at\t%s\n", orDash(created))
	if len(cl.RedirectURIs) == 0 {
		fmt.Fprintf(tw, "redirect_uris\t-\n")
	}
	for i, uri := range cl.RedirectURIs {
		label := ""
		if i == 0 {
			label = "redirect_uris"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, printable(uri))
	}
	fmt.Fprintf(tw, "scopes\t%s\n", scopeList(cl.Scopes))
	if len(cl.GrantTypes) > 0 {
		fmt.Fprintf(tw, "grant_types\t%s\n", scopeList(cl.GrantTypes))
	}
	if withSecret && cl.ClientSecret != "" {
		fmt.Fprintf(tw, "client_secret\t%s\n", printable(cl.ClientSecret))
	}
	return tw.Flush()
}

func clientType(cl clientObject) string {
	if cl.Public {
		return "public"
	}
	return "confidential"
}

func scopeList(scopes []string) string {
	if len(scopes) == 0 {
		return "-"
	}
	shown := make([]string, len(scopes))
	for i, s := range scopes {
		shown[i] = printable(s)
	}
	return strings.Join(shown, " ")
}

// orDash shows an empty value as "-" so that columns stay aligned.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}
