"""In a real browser every page renders fully under its Content-Security-Policy: nothing is
blocked, so nothing the page needs was forgotten, and an injected script is refused."""

from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Runs before the page's own scripts (Playwright injects it through the DevTools protocol, which
# the page's policy does not govern) and keeps every violation the browser reports.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(
    event.effectiveDirective + " blocked " + (event.blockedURI || "inline") + " in " +
    event.sourceFile + ":" + event.lineNumber
  );
});
"""


@pytest.fixture
def watched(page):
    """The page, with a list of the violations chromium reports for it."""
    page.add_init_script(RECORD_VIOLATIONS)
    messages = []
    page.on(
        "console",
        lambda m: messages.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.csp_console = messages
    return page


def violations(page) -> list[str]:
    # Reports are queued as tasks: let the page finish what it was doing first.
    page.wait_for_load_state("networkidle")
    recorded = page.evaluate("window.cspViolations")
    assert recorded is not None, "the violation listener did not run"
    return recorded + page.csp_console


@pytest.fixture
def staff(django_user_model):
    django_user_model.objects.create_superuser("staff", "staff@example.com", "a-long-password")
    return "staff", "a-long-password"


def log_in(page, base_url, credentials):
    page.goto(base_url + "/admin/login/")
    page.get_by_label("Username").fill(credentials[0])
    page.get_by_label("Password").fill(credentials[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base_url + "/admin/")


def test_the_landing_page_renders_styled_with_nothing_blocked(watched, live_server, mint):
    watched.goto(live_server.url + urlparse(mint("reader@example.com").url).path)
    assert "Unsubscribe from Default" in watched.text_content("h1")
    # The inline style sheet applied: the button is the page's red, not the browser's grey.
    background = watched.get_by_role("button", name="Unsubscribe", exact=True).evaluate(
        "b => getComputedStyle(b).backgroundColor"
    )
    assert background == "rgb(185, 28, 28)"
    assert violations(watched) == []

    watched.get_by_role("button", name="Unsubscribe", exact=True).click()
    watched.wait_for_selector("text=You are unsubscribed")
    assert violations(watched) == []


def test_the_double_opt_in_page_renders_styled_with_nothing_blocked(watched, confirm_link):
    watched.goto(confirm_link)
    button = watched.get_by_role("button", name="Yes, subscribe me")
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(185, 28, 28)"
    assert violations(watched) == []

    # The form posts back to the page itself, which the policy's form-action allows.
    button.click()
    watched.wait_for_selector("text=is confirmed")
    assert violations(watched) == []


def test_an_injected_script_on_the_landing_page_is_refused(watched, live_server, mint):
    watched.goto(live_server.url + urlparse(mint("reader@example.com").url).path)
    watched.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true;";
          document.body.append(script);
        }"""
    )
    assert watched.evaluate("window.injected") is None
    assert any(v.startswith("script-src-elem blocked inline") for v in violations(watched))


def test_the_admin_login_page_renders_with_nothing_blocked(watched, live_server):
    watched.goto(live_server.url + "/admin/login/")
    assert "Django administration" in watched.text_content("#site-name")
    assert watched.get_by_role("button", name="Log in").is_visible()
    assert violations(watched) == []


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/admin/", "Dashboard"),
        ("/admin/models/", "Site administration"),
        ("/admin/suppression/suppression/", "Select suppression to change"),
        ("/admin/compliance/stream/add/", "Add stream"),
        ("/admin/fbl/dailycount/", "Complaint rates"),
    ],
)
def test_admin_pages_work_for_staff_with_nothing_blocked(
    watched, live_server, staff, suppress, path, heading
):
    suppress("pat@example.com", "unsubscribe", scope="commercial")
    log_in(watched, live_server.url, staff)
    watched.goto(live_server.url + path)
    assert "Django administration" in watched.text_content("#site-name")
    assert heading in watched.text_content("#content h1")
    assert violations(watched) == []


def test_a_staff_member_adds_a_topic_row_with_the_admins_script(watched, live_server, staff):
    log_in(watched, live_server.url, staff)
    watched.goto(live_server.url + "/admin/compliance/stream/add/")
    rows = watched.locator(".dynamic-topics")
    before = rows.count()
    # inlines.js draws this button itself: it exists only if the admin's scripts ran.
    watched.get_by_role("button", name="Add another Topic").click()
    assert rows.count() == before + 1
    assert violations(watched) == []


def test_the_api_docs_render_the_schema_with_nothing_blocked(watched, live_server):
    watched.goto(live_server.url + "/api/docs/")
    # The title comes from the schema, which Swagger UI fetched and rendered.
    title = watched.wait_for_selector(".swagger-ui .info .title")
    assert "Email compliance and suppression service" in title.text_content()
    watched.wait_for_selector(".opblock")
    assert watched.locator(".opblock").count() > 10
    assert violations(watched) == []
