// Package command adds the `caddy tokengate` subcommands to the caddy
// binary: they manage OAuth clients, personal API tokens and users' grants
// of a running instance, as a client of the tokengate routes on Caddy's
// admin API.
package command

import (
	"fmt"
	"io"
	"strconv"
	"unicode"

	"github.com/spf13/cobra"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:      "tokengate",
		Usage:     "client|personal-token|user <subcommand> [--address <listen>] [--config <path> [--adapter <name>]] [--json]",
		Short:     "Manages tokengate's clients, personal API tokens and user grants",
		Long:      longHelp,
		CobraFunc: buildTokengate,
	})
}

const longHelp = `
Manages the OAuth clients, personal API tokens and user grants of a
running Caddy with tokengate, through the tokengate routes (/tokengate/)
of its admin API.

Clients from the Caddyfile are listed beside the clients added here
(source "config" and "store"); only stored clients can be removed or
given a new secret.

  client add --name <name> --redirect-uri <uri>... [--id <id>]
             [--scope <scope>]... [--public] [--pkce-optional]
             [--grant-types <type>,...]
      Adds a client. --redirect-uri and --scope repeat, one value each
      time. Without --id the server picks the client id; without --scope
      the client may ask for every declared scope. --public adds a client
      without a secret, which must always use PKCE; --pkce-optional lets a
      confidential client do without PKCE. --grant-types names the grants
      the client may use (default authorization_code,refresh_token;
      client_credentials for a confidential client acting for itself,
      which needs no --redirect-uri). Prints the client and, for a
      confidential client, its secret: the only time it is shown.

  client list
      One line a client, sorted by id: id, name, public or confidential,
      source (config or store), scopes.

  client get <id>
      Prints one client.

  client remove <id>
      Deletes a stored client. Its authorization codes, refresh tokens and
      its own client_credentials tokens stop working at once; the access
      tokens issued for users run out.

  client rotate-secret <id>
      Gives a stored confidential client a new secret and prints it, once.
      The old secret stops working at once.

  personal-token issue --user <id>
      Issues a personal API token for the user and prints it, once. An
      earlier personal token of the user stops working at once.

  personal-token revoke --user <id>
      Deactivates the user's personal API token, if there is one.

  user revoke --user <id> [--client <id>]
      With --client: revokes the user's consent to that client and every
      code and token of the user for it. Without --client: revokes every
      consent, code and token of the user, the personal token included
      (sign out everywhere).

Every subcommand takes:

  --address <listen>    the admin endpoint (default localhost:2019, or
                        the CADDY_ADMIN environment variable if set)
  -c, --config <path>   read the admin address from this config instead
  -a, --adapter <name>  the config adapter for --config
  --json                print the admin API's JSON answer as it came

An error answer of the admin API is printed with its message, and the
command exits with status 1; so does a failure to reach the endpoint.`

// buildTokengate makes the subcommand tree under cmd. caddycmd calls it
// each time it builds its root command, so nothing here is shared.
func buildTokengate(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("address", "", "Address of the administration API listener (if --config is not used)")
	pf.StringP("config", "c", "", "Configuration file to read the admin address from (if --address is not used)")
	pf.StringP("adapter", "a", "", "Name of config adapter to apply (if --config is used)")
	pf.Bool("json", false, "Print the admin API's JSON answer as it came")
	groupCommand(cmd)

	client := &cobra.Command{
		Use:   "client",
		Short: "Adds, lists, shows and removes OAuth clients, and rotates their secrets",
	}
	groupCommand(client)
	client.AddCommand(clientAddCommand(), clientListCommand(), clientGetCommand(),
		clientRemoveCommand(), clientRotateSecretCommand())

	personal := &cobra.Command{
		Use:   "personal-token",
		Short: "Issues and revokes users' personal API tokens",
	}
	groupCommand(personal)
	personal.AddCommand(personalTokenIssueCommand(), personalTokenRevokeCommand())

	user := &cobra.Command{
		Use:   "user",
		Short: "Revokes a user's grants and tokens",
	}
	groupCommand(user)
	user.AddCommand(userRevokeCommand())

	cmd.AddCommand(client, personal, user)
}

// groupCommand makes cmd, which only holds subcommands, print its help
// when run alone and refuse an unknown subcommand (cobra would otherwise
// print the help and exit 0 for a mistyped one).
func groupCommand(cmd *cobra.Command) {
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// cli is what a subcommand needs to do its work: where the admin API is
// and where and how to print.
type cli struct {
	api    adminAPI
	json   bool
	stdout io.Writer
	stderr io.Writer
}

// newCLI reads the flags every subcommand has and finds the admin address
// as `caddy stop` and `caddy trust` do.
func newCLI(cmd *cobra.Command) (*cli, error) {
	fl := caddycmd.Flags{FlagSet: cmd.Flags()}
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return nil, fmt.Errorf("couldn't determine admin API address: %w", err)
	}
	return &cli{
		api:    adminAPI{addr: addr},
		json:   fl.Bool("json"),
		stdout: cmd.OutOrStdout(),
		stderr: cmd.ErrOrStderr(),
	}, nil
}

// run makes the RunE of a subcommand: it builds the cli, then calls do.
// Errors go back to cobra, which prints them and makes caddy exit 1.
func run(do func(c *cli, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := newCLI(cmd)
		if err != nil {
			return err
		}
		return do(c, args)
	}
}

// printRaw writes an answer of the admin API as it came, ending the line.
func (c *cli) printRaw(answer []byte) error {
	if len(answer) == 0 {
		return nil
	}
	if _, err := c.stdout.Write(answer); err != nil {
		return err
	}
	if answer[len(answer)-1] != '\n' {
		_, err := io.WriteString(c.stdout, "\n")
		return err
	}
	return nil
}

// printable returns s, or s quoted with escapes when it holds characters
// that a terminal would act on or that would break the columns. Client
// names can come from dynamic registration, so they are not trusted.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// nonEmpty refuses an empty id: it would change which route is called.
func nonEmpty(what, v string) error {
	if v == "" {
		return fmt.Errorf("%s must not be empty", what)
	}
	return nil
}
