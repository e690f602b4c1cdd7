package sensor

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// Alphabets secret material is drawn from.
const (
	digits   = "0123456789"
	hexLower = "0123456789abcdef"
	upper    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower    = "abcdefghijklmnopqrstuvwxyz"
	alnum    = upper + lower + digits
	base64   = alnum + "+/"
	base64u  = alnum + "-_"
	base32u  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	bech32u  = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
	urlSafe  = alnum + "._~-"
)

// material draws the random part of a fake secret, from a PRNG in the corpus tests and from
// the fuzzer's bytes in FuzzRedactKnownSecrets. It keeps every run it drew: those runs are the
// secret material that must not survive redaction (a format's fixed parts, such as ghp_ or a
// PEM header, are public).
type material struct {
	next   func() byte
	chunks []string
}

func (m *material) draw(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[int(m.next())%len(alphabet)]
	}
	m.chunks = append(m.chunks, string(b))
	return string(b)
}

// pem draws a PEM block of the given type with n base64 lines of 64 characters, lines joined
// by nl (a newline, or the two characters \n inside a JSON string).
func (m *material) pem(kind string, n int, nl string) string {
	lines := []string{"-----BEGIN " + kind + "-----", "MII" + m.draw(base64, 61)}
	for range n - 1 {
		lines = append(lines, m.draw(base64, 64))
	}
	return strings.Join(append(lines, "-----END "+kind+"-----"), nl)
}

// secretFormat is a real secret format in a realistic command line. cmd holds one NUL where
// the secret goes (a NUL cannot be in an argv, so it never clashes with the command's text);
// keep are parts of the command that must stay readable after redaction; bare formats are
// recognisable by their shape alone, without a secret-named flag, variable or header around.
type secretFormat struct {
	name string
	// prefix is the format's public prefix, which may stay when a cut tail is redacted.
	prefix string
	secret func(m *material) string
	cmd    string
	keep   []string
	bare   bool
}

// secretCorpus: the formats issue 10 names (cloud keys, tokens, connection strings, private
// keys on the command line, headers), each with fake values of the right alphabet and length.
// gitleaks' rule files (cmd/generate/config/rules/*.go) document most of the formats.
var secretCorpus = []secretFormat{
	{
		name: "aws access key id", prefix: "AKIA", bare: true,
		secret: func(m *material) string { return "AKIA" + m.draw(base32u, 16) },
		cmd:    "docker run --rm -e AWS_REGION=eu-west-1 -e AWS_ACCESS_KEY_ID=\x00 amazon/aws-cli s3 ls s3://build-artifacts",
		keep:   []string{"docker run --rm", "AWS_REGION=eu-west-1", "amazon/aws-cli s3 ls s3://build-artifacts"},
	},
	{
		name:   "aws secret access key (env)",
		secret: func(m *material) string { return m.draw(alnum+"+/", 40) },
		cmd:    "bash -c 'export AWS_SECRET_ACCESS_KEY=\x00; aws s3 cp dist/ s3://releases/ --recursive'",
		keep:   []string{"bash -c 'export AWS_SECRET_ACCESS_KEY=", "; aws s3 cp dist/ s3://releases/ --recursive'"},
	},
	{
		name:   "aws secret access key (aws configure)",
		secret: func(m *material) string { return m.draw(alnum+"+/", 40) },
		cmd:    "aws configure set aws_secret_access_key \x00 --profile ci",
		keep:   []string{"aws configure set aws_secret_access_key ", " --profile ci"},
	},
	{
		name: "gcp api key", prefix: "AIza", bare: true,
		secret: func(m *material) string { return "AIza" + m.draw(base64u, 35) },
		cmd:    `curl -s "https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key=` + "\x00" + `"`,
		keep:   []string{`curl -s "https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key=`},
	},
	{
		name: "gcp service account private key (json)", prefix: "-----BEGIN PRIVATE KEY-----",
		secret: func(m *material) string { return m.pem("PRIVATE KEY", 6, `\n`) + `\n` },
		cmd:    `gcloud auth activate-service-account --key-file=<(echo '{"type":"service_account","project_id":"acme-prod","private_key":"` + "\x00" + `","client_email":"deploy@acme-prod.iam.gserviceaccount.com"}')`,
		keep:   []string{"gcloud auth activate-service-account --key-file=<(echo", "deploy@acme-prod.iam.gserviceaccount.com"},
	},
	{
		name:   "azure storage connection string",
		secret: func(m *material) string { return m.draw(base64, 86) + "==" },
		cmd:    `az storage blob upload --connection-string "DefaultEndpointsProtocol=https;AccountName=acmeprod;AccountKey=` + "\x00" + `;EndpointSuffix=core.windows.net" --container-name logs --file app.log`,
		keep:   []string{"az storage blob upload --connection-string", "AccountName=acmeprod", "--container-name logs --file app.log"},
	},
	{
		name:   "azure sas token",
		secret: func(m *material) string { return m.draw(alnum, 43) + "%3D" },
		cmd:    `azcopy copy ./build "https://acmeprod.blob.core.windows.net/releases?sv=2022-11-02&ss=b&srt=co&sp=rwlc&se=2026-01-01T00:00:00Z&spr=https&sig=` + "\x00" + `" --recursive`,
		keep:   []string{"azcopy copy ./build", "acmeprod.blob.core.windows.net/releases?sv=2022-11-02", "--recursive"},
	},
	{
		name: "github classic pat", prefix: "ghp_", bare: true,
		secret: func(m *material) string { return "ghp_" + m.draw(alnum, 36) },
		cmd:    "git clone https://\x00@github.com/acme/infra.git",
		keep:   []string{"git clone https://", "@github.com/acme/infra.git"},
	},
	{
		name: "github oauth token", prefix: "gho_", bare: true,
		secret: func(m *material) string { return "gho_" + m.draw(alnum, 36) },
		cmd:    "bash -c 'gh auth login --with-token <<< \x00 && gh repo list acme'",
		keep:   []string{"gh auth login --with-token", "gh repo list acme"},
	},
	{
		name: "github app installation token", prefix: "ghs_", bare: true,
		secret: func(m *material) string { return "ghs_" + m.draw(alnum, 36) },
		cmd:    "git push https://x-access-token:\x00@github.com/acme/app.git HEAD:main",
		keep:   []string{"git push https://x-access-token:", "@github.com/acme/app.git HEAD:main"},
	},
	{
		name: "github fine-grained pat", prefix: "github_pat_", bare: true,
		secret: func(m *material) string { return "github_pat_11" + m.draw(alnum, 20) + "_" + m.draw(alnum, 59) },
		cmd:    "GH_TOKEN=\x00 gh pr create --fill --base main",
		keep:   []string{"gh pr create --fill --base main"},
	},
	{
		name: "gitlab pat", prefix: "glpat-", bare: true,
		secret: func(m *material) string { return "glpat-" + m.draw(base64u, 20) },
		cmd:    "git remote set-url origin https://oauth2:\x00@gitlab.example.com/platform/api.git",
		keep:   []string{"git remote set-url origin https://oauth2:", "@gitlab.example.com/platform/api.git"},
	},
	{
		name: "slack bot token", prefix: "xoxb-", bare: true,
		secret: func(m *material) string {
			return "xoxb-" + m.draw(digits, 12) + "-" + m.draw(digits, 13) + "-" + m.draw(alnum, 24)
		},
		cmd:  "curl -s -X POST https://slack.com/api/chat.postMessage -d token=\x00 -d channel=C024BE91L -d text=deployed",
		keep: []string{"curl -s -X POST https://slack.com/api/chat.postMessage", "-d channel=C024BE91L -d text=deployed"},
	},
	{
		name: "slack user token", prefix: "xoxp-", bare: true,
		secret: func(m *material) string {
			return "xoxp-" + m.draw(digits, 12) + "-" + m.draw(digits, 12) + "-" + m.draw(digits, 13) + "-" + m.draw(hexLower, 32)
		},
		cmd:  "python3 export_history.py --slack-token \x00 --channel general",
		keep: []string{"python3 export_history.py --slack-token", "--channel general"},
	},
	{
		name: "slack webhook url", prefix: "https://hooks.slack.com/services/", bare: true,
		secret: func(m *material) string {
			return "https://hooks.slack.com/services/T" + m.draw(upper+digits, 8) + "/B" + m.draw(upper+digits, 10) + "/" + m.draw(alnum, 24)
		},
		cmd:  `curl -X POST -H 'Content-type: application/json' --data '{"text":"deploy done"}' ` + "\x00",
		keep: []string{"curl -X POST -H 'Content-type: application/json'", `--data '{"text":"deploy done"}'`},
	},
	{
		name: "stripe live secret key", prefix: "sk_live_", bare: true,
		secret: func(m *material) string { return "sk_live_" + m.draw(alnum, 99) },
		cmd:    "curl https://api.stripe.com/v1/charges -u \x00: -d amount=2000 -d currency=usd",
		keep:   []string{"curl https://api.stripe.com/v1/charges -u", "-d amount=2000 -d currency=usd"},
	},
	{
		name: "stripe restricted key", prefix: "rk_live_", bare: true,
		secret: func(m *material) string { return "rk_live_" + m.draw(alnum, 24) },
		cmd:    "STRIPE_KEY=\x00 node scripts/refund.js --charge ch_3Mtw",
		keep:   []string{"STRIPE_KEY=", "node scripts/refund.js --charge ch_3Mtw"},
	},
	{
		name: "anthropic api key", prefix: "sk-ant-api03-", bare: true,
		secret: func(m *material) string { return "sk-ant-api03-" + m.draw(base64u, 93) + "AA" },
		cmd:    `ANTHROPIC_API_KEY=` + "\x00" + ` claude -p "summarize the diff"`,
		keep:   []string{`claude -p "summarize the diff"`},
	},
	{
		name: "openai project key", prefix: "sk-proj-", bare: true,
		secret: func(m *material) string {
			return "sk-proj-" + m.draw(base64u, 74) + "T3BlbkFJ" + m.draw(base64u, 74)
		},
		cmd:  `curl https://api.openai.com/v1/models -H "Authorization: Bearer ` + "\x00" + `"`,
		keep: []string{"curl https://api.openai.com/v1/models", `-H "Authorization: Bearer `},
	},
	{
		name: "npm token", prefix: "npm_", bare: true,
		secret: func(m *material) string { return "npm_" + m.draw(alnum, 36) },
		cmd:    "npm config set //registry.npmjs.org/:_authToken=\x00",
		keep:   []string{"npm config set //registry.npmjs.org/:_authToken="},
	},
	{
		name: "pypi upload token", prefix: "pypi-AgEIcHlwaS5vcmc", bare: true,
		secret: func(m *material) string { return "pypi-AgEIcHlwaS5vcmc" + m.draw(base64u, 150) },
		cmd:    "twine upload --repository pypi -u __token__ -p \x00 dist/*",
		keep:   []string{"twine upload --repository pypi -u __token__ -p", "dist/*"},
	},
	{
		name: "twilio api key", prefix: "SK", bare: true,
		secret: func(m *material) string { return "SK" + m.draw(hexLower, 32) },
		cmd:    `curl -X POST https://api.twilio.com/2010-04-01/Accounts/AC0123/Messages.json --data-urlencode "Body=build passed" -u ` + "\x00" + `:$TWILIO_API_SECRET`,
		keep:   []string{"curl -X POST https://api.twilio.com/2010-04-01/Accounts/AC0123/Messages.json", `--data-urlencode "Body=build passed"`},
	},
	{
		name:   "twilio auth token",
		secret: func(m *material) string { return m.draw(hexLower, 32) },
		cmd:    "TWILIO_ACCOUNT_SID=AC0123 TWILIO_AUTH_TOKEN=\x00 python3 notify.py --to ops",
		keep:   []string{"TWILIO_ACCOUNT_SID=AC0123", "python3 notify.py --to ops"},
	},
	{
		name: "sendgrid api key", prefix: "SG.", bare: true,
		secret: func(m *material) string { return "SG." + m.draw(base64u, 22) + "." + m.draw(base64u, 43) },
		cmd:    `curl --request POST --url https://api.sendgrid.com/v3/mail/send --header "Authorization: Bearer ` + "\x00" + `"`,
		keep:   []string{"curl --request POST --url https://api.sendgrid.com/v3/mail/send --header"},
	},
	{
		name:   "datadog api key",
		secret: func(m *material) string { return m.draw(hexLower, 32) },
		cmd:    "docker run -d -e DD_API_KEY=\x00 -e DD_SITE=datadoghq.eu gcr.io/datadoghq/agent:7",
		keep:   []string{"docker run -d -e DD_API_KEY=", "-e DD_SITE=datadoghq.eu gcr.io/datadoghq/agent:7"},
	},
	{
		name:   "datadog application key",
		secret: func(m *material) string { return m.draw(hexLower, 40) },
		cmd:    `curl -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: ` + "\x00" + `" https://api.datadoghq.com/api/v1/validate`,
		keep:   []string{`curl -H "DD-API-KEY: `, "https://api.datadoghq.com/api/v1/validate"},
	},
	{
		name: "vault service token", prefix: "hvs.", bare: true,
		secret: func(m *material) string { return "hvs." + m.draw(base64u, 91) },
		cmd:    "VAULT_ADDR=https://vault.internal:8200 VAULT_TOKEN=\x00 vault kv get -field=url secret/app",
		keep:   []string{"VAULT_ADDR=https://vault.internal:8200", "vault kv get -field=url secret/app"},
	},
	{
		name:   "docker login password",
		secret: func(m *material) string { return m.draw(alnum, 24) },
		cmd:    "docker login -u ci-bot -p \x00 registry.example.com",
		keep:   []string{"docker login -u ci-bot -p", "registry.example.com"},
	},
	{
		name:   "docker config auth",
		secret: func(m *material) string { return m.draw(base64, 40) + "=" },
		cmd:    `bash -c 'echo {\"auths\":{\"registry.example.com\":{\"auth\":\"` + "\x00" + `\"}}} > ~/.docker/config.json'`,
		keep:   []string{"registry.example.com", "> ~/.docker/config.json'"},
	},
	{
		name: "rsa private key on the command line", prefix: "-----BEGIN RSA PRIVATE KEY-----",
		secret: func(m *material) string { return m.pem("RSA PRIVATE KEY", 8, "\n") },
		cmd:    "bash -c 'ssh-add - <<< \"\x00\" && ssh -o StrictHostKeyChecking=no deploy@10.0.4.12 uptime'",
		keep:   []string{"bash -c 'ssh-add - <<< \"", "&& ssh -o StrictHostKeyChecking=no deploy@10.0.4.12 uptime'"},
		bare:   true,
	},
	{
		name: "openssh private key on the command line", prefix: "-----BEGIN OPENSSH PRIVATE KEY-----",
		secret: func(m *material) string { return m.pem("OPENSSH PRIVATE KEY", 4, "\n") },
		cmd:    "ssh-keygen -y -f /dev/stdin <<< '\x00' > id.pub",
		keep:   []string{"ssh-keygen -y -f /dev/stdin <<< '", "' > id.pub"},
		bare:   true,
	},
	{
		name:   "postgres uri",
		secret: func(m *material) string { return m.draw(urlSafe, 20) },
		cmd:    `psql "postgresql://app_user:` + "\x00" + `@db.internal:5432/orders?sslmode=require" -c "select 1"`,
		keep:   []string{`psql "postgresql://app_user:`, `@db.internal:5432/orders?sslmode=require" -c "select 1"`},
	},
	{
		name:   "mongodb+srv uri",
		secret: func(m *material) string { return m.draw(urlSafe, 24) },
		cmd:    `mongosh "mongodb+srv://admin:` + "\x00" + `@cluster0.ab1cd.mongodb.net/prod?retryWrites=true"`,
		keep:   []string{`mongosh "mongodb+srv://admin:`, "@cluster0.ab1cd.mongodb.net/prod?retryWrites=true"},
	},
	{
		name:   "mysql uri",
		secret: func(m *material) string { return m.draw(urlSafe, 16) },
		cmd:    "mysqlsh --uri mysql://root:\x00@127.0.0.1:3306/shop --sql",
		keep:   []string{"mysqlsh --uri mysql://root:", "@127.0.0.1:3306/shop --sql"},
	},
	{
		name:   "redis uri without user",
		secret: func(m *material) string { return m.draw(urlSafe, 32) },
		cmd:    "redis-cli -u redis://:\x00@cache.internal:6379/0 ping",
		keep:   []string{"redis-cli -u redis://:", "@cache.internal:6379/0 ping"},
	},
	{
		name:   "redis-cli -a",
		secret: func(m *material) string { return m.draw(alnum, 32) },
		cmd:    "redis-cli -h cache.internal -a \x00 --no-auth-warning info",
		keep:   []string{"redis-cli -h cache.internal -a", "--no-auth-warning info"},
	},
	{
		name:   "mysql -p glued password",
		secret: func(m *material) string { return m.draw(alnum, 18) },
		cmd:    "mysql -h db.internal -u root -p\x00 shop < dump.sql",
		keep:   []string{"mysql -h db.internal -u root -p", "shop < dump.sql"},
	},
	{
		name:   "sshpass -p",
		secret: func(m *material) string { return m.draw(alnum, 16) },
		cmd:    "sshpass -p \x00 ssh -o StrictHostKeyChecking=no deploy@10.0.0.5 uptime",
		keep:   []string{"sshpass -p", "ssh -o StrictHostKeyChecking=no deploy@10.0.0.5 uptime"},
	},
	{
		name:   "jdbc password parameter",
		secret: func(m *material) string { return m.draw(alnum, 20) },
		cmd:    `java -jar app.jar --spring.datasource.url="jdbc:postgresql://db:5432/app?user=app&password=` + "\x00" + `&ssl=true"`,
		keep:   []string{"java -jar app.jar", "jdbc:postgresql://db:5432/app?user=app&password=", "&ssl=true"},
	},
	{
		name:   "jdbc sqlserver password",
		secret: func(m *material) string { return m.draw(alnum, 20) },
		cmd:    "flyway -url='jdbc:sqlserver://sql.internal:1433;databaseName=erp;user=sa;password=\x00;encrypt=true' migrate",
		keep:   []string{"flyway -url='jdbc:sqlserver://sql.internal:1433;databaseName=erp;user=sa;password=", ";encrypt=true' migrate"},
	},
	{
		name:   "jdbc oracle thin user/password",
		secret: func(m *material) string { return m.draw(alnum, 14) },
		cmd:    "java -Ddb.url=jdbc:oracle:thin:scott/\x00@//ora.internal:1521/ORCL -jar app.jar",
		keep:   []string{"java -Ddb.url=jdbc:oracle:thin:scott/", "@//ora.internal:1521/ORCL -jar app.jar"},
	},
	{
		name:   "authorization basic",
		secret: func(m *material) string { return m.draw(base64, 28) + "=" },
		cmd:    `curl -H "Authorization: Basic ` + "\x00" + `" https://ci.example.com/api/json`,
		keep:   []string{`curl -H "Authorization: Basic `, "https://ci.example.com/api/json"},
	},
	{
		name:   "x-api-key header",
		secret: func(m *material) string { return m.draw(alnum, 32) },
		cmd:    "curl -H 'X-Api-Key: \x00' https://api.example.com/v2/items",
		keep:   []string{"curl -H 'X-Api-Key: ", "https://api.example.com/v2/items"},
	},
	{
		name:   "cookie header",
		secret: func(m *material) string { return m.draw(alnum, 32) },
		cmd:    `curl -H "Cookie: session=` + "\x00" + `; theme=dark" https://app.example.com/admin`,
		keep:   []string{`curl -H "Cookie: `, "https://app.example.com/admin"},
	},
	{
		name:   "curl -b cookie",
		secret: func(m *material) string { return m.draw(alnum, 32) },
		cmd:    "curl -b 'session=\x00' https://app.example.com/admin",
		keep:   []string{"curl -b '", "' https://app.example.com/admin"},
	},
	{
		name: "hugging face token", prefix: "hf_", bare: true,
		secret: func(m *material) string { return "hf_" + m.draw(upper+lower, 34) },
		cmd:    "HF_TOKEN=\x00 huggingface-cli download meta-llama/Llama-3.1-8B",
		keep:   []string{"huggingface-cli download meta-llama/Llama-3.1-8B"},
	},
	{
		name: "databricks token", prefix: "dapi", bare: true,
		secret: func(m *material) string { return "dapi" + m.draw(hexLower, 32) },
		cmd:    "DATABRICKS_HOST=https://adb-1234.azuredatabricks.net DATABRICKS_TOKEN=\x00 databricks clusters list",
		keep:   []string{"DATABRICKS_HOST=https://adb-1234.azuredatabricks.net", "databricks clusters list"},
	},
	{
		name: "digitalocean token", prefix: "dop_v1_", bare: true,
		secret: func(m *material) string { return "dop_v1_" + m.draw(hexLower, 64) },
		cmd:    "doctl auth init --access-token \x00 --context prod",
		keep:   []string{"doctl auth init --access-token", "--context prod"},
	},
	{
		name: "shopify access token", prefix: "shpat_", bare: true,
		secret: func(m *material) string { return "shpat_" + m.draw(hexLower, 32) },
		cmd:    `curl -H "X-Shopify-Access-Token: ` + "\x00" + `" https://acme.myshopify.com/admin/api/2024-01/shop.json`,
		keep:   []string{`curl -H "X-Shopify-Access-Token: `, "https://acme.myshopify.com/admin/api/2024-01/shop.json"},
	},
	{
		name: "age secret key", prefix: "AGE-SECRET-KEY-1", bare: true,
		secret: func(m *material) string { return "AGE-SECRET-KEY-1" + m.draw(bech32u, 58) },
		cmd:    "SOPS_AGE_KEY=\x00 sops -d secrets.enc.yaml",
		keep:   []string{"sops -d secrets.enc.yaml"},
	},
	{
		name: "jwt", prefix: "eyJ", bare: true,
		secret: func(m *material) string {
			return "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ" + m.draw(base64u, 60) + "." + m.draw(base64u, 86)
		},
		cmd:  "kubectl --token=\x00 get pods -n prod",
		keep: []string{"kubectl --token=", "get pods -n prod"},
	},
	{
		name:   "azure devops pat as url user",
		secret: func(m *material) string { return m.draw(lower+digits, 52) },
		cmd:    "git clone https://\x00@dev.azure.com/acme/platform/_git/api",
		keep:   []string{"git clone https://", "@dev.azure.com/acme/platform/_git/api"},
	},
}

// leakBound is how much secret material a redacted line may still hold: no run of this many
// characters of one drawn part of a secret may survive. A shorter fragment is too little to
// use or to search for, and a format's public prefix (ghp_, AKIA, sk_live_) is not material.
const leakBound = 8

// leaked returns a run of leakBound characters of m's material that out still holds, or "".
func leaked(out string, m *material) string {
	for _, c := range m.chunks {
		for i := 0; i+leakBound <= len(c); i++ {
			if strings.Contains(out, c[i:i+leakBound]) {
				return c[i : i+leakBound]
			}
		}
	}
	return ""
}

// sample fills f's command with a secret drawn from a PRNG seeded with seed.
func sample(f secretFormat, cmd string, seed uint64) (line, secret string, m *material) {
	r := rand.New(rand.NewPCG(seed, uint64(len(f.name))))
	m = &material{next: func() byte { return byte(r.Uint32()) }}
	secret = f.secret(m)
	return strings.Replace(cmd, "\x00", secret, 1), secret, m
}

// corpusSamples is how many secrets each format is tried with: enough that a rule depending on
// chance (an entropy threshold, a stop word inside the secret) shows.
const corpusSamples = 25

// bareCmd puts a bare-shaped secret where no name or header says what it is.
const bareCmd = "printf '%s\\n' \x00 | tool import --stdin"

func TestRedactCorpus(t *testing.T) {
	caught, total := 0, 0
	for _, f := range secretCorpus {
		cmds := []string{f.cmd}
		if f.bare {
			cmds = append(cmds, bareCmd)
		}
		for ci, cmd := range cmds {
			for seed := range uint64(corpusSamples) {
				line, _, m := sample(f, cmd, seed)
				out := RedactString(line)
				total++
				if frag := leaked(out, m); frag != "" {
					t.Errorf("%s (command %d, seed %d): %q survives\n in  %q\n out %q", f.name, ci, seed, frag, line, out)
					continue
				}
				caught++
				keep := f.keep
				if ci > 0 {
					keep = []string{"printf '%s\\n'", "| tool import --stdin"}
				}
				for _, k := range keep {
					if !strings.Contains(out, k) {
						t.Errorf("%s (command %d, seed %d): %q is no longer readable\n in  %q\n out %q", f.name, ci, seed, k, line, out)
						break
					}
				}
				if again := RedactString(out); again != out {
					t.Errorf("%s: not idempotent: %q -> %q", f.name, out, again)
				}
			}
		}
	}
	t.Logf("%d formats: %d of %d secret lines redacted", len(secretCorpus), caught, total)
}

// benignArgv are common commands that hold no secret, several of them with words or shapes
// near one (token, key, secret, hex digests, base64, UUIDs). Redaction must leave them as
// they are.
var benignArgv = []string{
	"git status --short",
	"git commit -m 'fix token refresh when the session expires'",
	"git commit -m 'rotate the api key and update the secret name in the docs'",
	"git log --oneline -n 20 -- internal/auth",
	"git checkout 3f786850e387550fdab836ed7e6dc881de23001b",
	"git rebase -i HEAD~3",
	"go test ./...",
	"go test -run 'TestTokenRefresh|TestPasswordReset' ./internal/auth/...",
	"go build -trimpath -ldflags '-s -w -X main.version=1.4.2' -o bin/api ./cmd/api",
	"npm install",
	"npm ci --prefer-offline --no-audit",
	"npm run build -- --mode production",
	"pip install -r requirements.txt",
	"python3 -m pytest -k 'test_token_expiry or test_api_key_rotation' tests/",
	`python3 -c "import secrets; print(secrets.token_hex(16))"`,
	"make -j8 all",
	"cargo build --release --target x86_64-unknown-linux-gnu",
	"docker pull nginx@sha256:0b970013351304af46f322da1263516b188318682b2ab1091862497591189ff1",
	"docker build -t registry.example.com/team/api:1.4.2 --build-arg GO_VERSION=1.26 .",
	"docker run --rm -v /var/run/docker.sock:/var/run/docker.sock -e LOG_LEVEL=debug img:latest",
	"docker inspect --format '{{.Id}}' sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"sha256sum dist/app-linux-amd64.tar.gz",
	"echo e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  dist/app.tar.gz | sha256sum -c",
	"cat /root/.cache/go-build/3f/3f786850e387550fdab836ed7e6dc881de23001b4d2c9c8b1e3f0a9d8c7b6a5f-d",
	"cc -c -o out/obj/a3f9c2e1d4b5a6978877665544332211.o src/main.c",
	"kubectl get secrets -n prod -o name",
	"kubectl logs deploy/api -n prod --since=10m",
	"kubectl describe pod api-7d9f8c6b5-x2k4p -n prod",
	"helm upgrade --install api ./chart --set image.tag=v1.2.3 --namespace prod",
	"terraform plan -var-file=prod.tfvars -out=plan.bin",
	"aws s3 ls s3://build-artifacts/releases/",
	"aws sts get-caller-identity --profile prod",
	"ssh-keygen -t ed25519 -C dev@example.com -f /home/dev/.ssh/id_ed25519",
	"openssl req -new -key server.key -out server.csr -subj /CN=api.example.com",
	"gpg --recv-keys 0xABCDEF0123456789",
	"curl -s https://api.github.com/repos/acme/api/commits?per_page=100",
	"curl -fsSL https://example.com/install.sh -o /tmp/install.sh",
	"jq -r '.access_token' response.json",
	"echo aGVsbG8gd29ybGQsIHRoaXMgaXMgYSB0ZXN0IG9mIGJhc2U2NA== | base64 -d",
	"echo 'the session id is 0f8fad5b-d9cb-469f-a165-70867728950e' >> notes.txt",
	"node --max-old-space-size=4096 scripts/build.js",
	"/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xmx2g -jar build/libs/app-1.0.jar",
	"sort --key=2,2 -t, data.csv",
	"find . -name '*.pem' -newer go.mod -not -path './vendor/*'",
	"export PATH=/usr/local/go/bin:/root/go/bin:$PATH",
	"ls -la /home/dev/.ssh /etc/ssl/private",
	"git clone git@github.com:acme/infra.git",
	"git clone https://github.com/acme/infra.git",
	"npm install @scope/package@1.2.3 lodash@4.17.21",
	"rsync -az --delete build/ deploy@10.0.4.12:/srv/app/",
	"tar czf backup-2026-01-01.tar.gz /srv/app/data",
	"git checkout -b feature/oauth-token-refresh",
}

// benignRedacted are benign commands the positional rule (aws configure set
// aws_secret_access_key V) cannot tell from a secret: the word after a secret-named word is
// taken for its value. The command stays readable.
var benignRedacted = []struct{ in, want string }{
	{"grep -rn api_key src/", "grep -rn api_key [REDACTED]"},
}

func TestRedactBenign(t *testing.T) {
	changed := 0
	for _, s := range benignArgv {
		if out := RedactString(s); out != s {
			changed++
			t.Errorf("benign command changed:\n in  %q\n out %q", s, out)
		}
	}
	for _, c := range benignRedacted {
		if out := RedactString(c.in); out != c.want {
			t.Errorf("RedactString(%q) = %q, want %q", c.in, out, c.want)
		}
	}
	t.Logf("%d of %d benign commands changed, and %d known", changed, len(benignArgv), len(benignRedacted))
}

// TestRedactCutTailCorpus: the kernel keeps 4 KiB of argv, so the last argument can end
// anywhere inside a secret. For every corpus secret and every cut inside it, what the
// pipeline writes (RedactString, then RedactCutTail on the cut last argument) must not hold
// leakBound characters of secret material.
func TestRedactCutTailCorpus(t *testing.T) {
	cuts := 0
	for _, f := range secretCorpus {
		cmds := []string{f.cmd}
		if f.bare {
			cmds = append(cmds, bareCmd)
		}
		for ci, cmd := range cmds {
			for seed := range uint64(1) {
				line, secret, m := sample(f, cmd, seed)
				at := strings.Index(line, secret)
				for k := at + 1; k <= at+len(secret); k++ {
					cut := line[:k]
					cuts++
					out := RedactCutTail(RedactString(cut))
					if frag := leaked(out, m); frag != "" {
						t.Errorf("%s (command %d): cut after %d of %d secret bytes leaks %q\n in  %q\n out %q", f.name, ci, k-at, len(secret), frag, cut, out)
						break
					}
				}
			}
		}
	}
	t.Logf("%d cut points checked", cuts)
}

func TestRedactCorpusFormatsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range secretCorpus {
		if seen[f.name] {
			t.Errorf("duplicate format %q", f.name)
		}
		seen[f.name] = true
		if strings.Count(f.cmd, "\x00") != 1 {
			t.Errorf("%s: command must hold exactly one secret placeholder", f.name)
		}
		_, secret, _ := sample(f, f.cmd, 0)
		if !strings.HasPrefix(secret, f.prefix) {
			t.Errorf("%s: secret %q does not start with its prefix %q", f.name, secret, f.prefix)
		}
	}
}

// TestRedactArgsCorpus runs the corpus commands that a shell would split on blanks alone as
// the argv an exec event carries, through RedactArgs.
func TestRedactArgsCorpus(t *testing.T) {
	n := 0
	for _, f := range secretCorpus {
		if strings.ContainsAny(f.cmd, `'"<>|;`) {
			continue
		}
		for seed := range uint64(corpusSamples) {
			line, _, m := sample(f, f.cmd, seed)
			argv := strings.Fields(line)
			out := strings.Join(RedactArgs(argv), " ")
			n++
			if frag := leaked(out, m); frag != "" {
				t.Errorf("%s (seed %d): %q survives\n in  %q\n out %q", f.name, seed, frag, argv, out)
			}
		}
	}
	t.Logf("%d argvs", n)
}

// fuzzDelims are what the fuzzer may put right before and after a secret: the characters
// that end a word in a shell line, a URL, JSON or a header.
const fuzzDelims = " \n\t'\"=:;,()<>[]{}|&`\\/@"

// FuzzRedactKnownSecrets: no secret of a corpus format survives RedactString, whatever the
// text around it. The fuzzer picks the format, the secret material (its bytes mapped into the
// format's alphabet; past their end a fixed generator fills the rest), the text before and
// after, and the characters that delimit the secret. A format a shape identifies stands
// bare between the delimiters; any other stands in its command line, on a line of its own.
func FuzzRedactKnownSecrets(f *testing.F) {
	for i := range secretCorpus {
		f.Add(uint8(i), []byte(secretCorpus[i].name), "echo start", "| tail -n 1", uint8(0), uint8(0))
	}
	f.Fuzz(func(t *testing.T, format uint8, material0 []byte, before, after string, d1, d2 uint8) {
		sf := secretCorpus[int(format)%len(secretCorpus)]
		m := &material{next: fuzzBytes(material0)}
		secret := sf.secret(m)
		var line string
		if sf.bare {
			line = before + string(fuzzDelims[int(d1)%len(fuzzDelims)]) + secret + string(fuzzDelims[int(d2)%len(fuzzDelims)]) + after
		} else {
			line = before + "\n" + strings.Replace(sf.cmd, "\x00", secret, 1) + "\n" + after
		}
		if frag := leaked(RedactString(line), m); frag != "" {
			t.Fatalf("%s: %q survives\n in  %q\n out %q", sf.name, frag, line, RedactString(line))
		}
	})
}

// fuzzBytes returns a byte source that yields b and then a fixed xorshift sequence seeded by
// it, so that every draw is the fuzzer's and a short input still fills a long secret.
func fuzzBytes(b []byte) func() byte {
	x := uint64(len(b))*0x9E3779B97F4A7C15 | 1
	for _, c := range b {
		x = (x ^ uint64(c)) * 0x100000001B3
	}
	return func() byte {
		if len(b) > 0 {
			c := b[0]
			b = b[1:]
			return c
		}
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return byte(x >> 32)
	}
}
