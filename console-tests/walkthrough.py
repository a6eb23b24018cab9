"""The console walk-through in headless chromium (see run.sh).

Logs in, creates a bucket, uploads a file through the bucket page's
multipart form, sees it listed, downloads it (bytes equal) and writes a
screenshot of every page it passes to --out. Exits non-zero on the first
thing that is not as a user would expect.
"""

import argparse
import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

BUCKET = "walkthrough"
FILE_NAME = "report.bin"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True, help="http://host:port/console/")
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--out", required=True, help="screenshot directory")
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--driver", required=True)
    args = ap.parse_args()

    downloads = tempfile.mkdtemp(prefix="console-downloads-")
    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": downloads,
        "download.prompt_for_download": False,
    })
    driver = webdriver.Chrome(service=Service(args.driver), options=options)
    wait = WebDriverWait(driver, 20)
    shots = []

    def shot(name: str) -> None:
        path = os.path.join(args.out, f"{len(shots) + 1:02d}-{name}.png")
        if not driver.save_screenshot(path):
            raise AssertionError(f"no screenshot written to {path}")
        shots.append(path)

    def until(cond):
        """wait.until, with a screenshot when it times out. While a page
        is being replaced chromium may answer a look with an inspector
        error rather than a stale element: such a look is tried again."""
        deadline = time.time() + 20
        while True:
            try:
                return wait.until(cond)
            except TimeoutException:
                shot("failure")
                raise
            except WebDriverException as e:
                if "inspector error" not in str(e) or time.time() > deadline:
                    raise
                time.sleep(0.1)

    def leave(act, ready) -> None:
        """Does `act` (a click that loads another page) and waits for
        `ready` on the new page: the old page must be gone first, so what
        it showed is never taken for the new page's."""
        page = driver.find_element(By.TAG_NAME, "html")
        act()
        until(ec.staleness_of(page))
        until(ready)

    def submit(button: str, notice: str) -> None:
        leave(driver.find_element(By.XPATH, f"//button[text()='{button}']").click,
              ec.text_to_be_present_in_element((By.CLASS_NAME, "notice"), notice))

    def follow(link: str, ready) -> None:
        leave(driver.find_element(By.LINK_TEXT, link).click, ready)

    def check(cond: bool, what: str) -> None:
        if not cond:
            shot("failure")
            raise AssertionError(f"{what} (at {driver.current_url})")

    try:
        # Without a session the console sends the browser to the login page.
        driver.get(args.console)
        until(ec.presence_of_element_located((By.NAME, "access_key")))
        check(driver.current_url.endswith("/console/login"), "redirected to the login page")
        shot("login")

        driver.find_element(By.NAME, "access_key").send_keys(args.access_key)
        driver.find_element(By.NAME, "secret_key").send_keys(args.secret_key)
        leave(driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click,
              ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Metadata members"))
        body = driver.find_element(By.TAG_NAME, "body").text
        check(driver.current_url.endswith("/console/cluster") and "Health:" in body,
              "the cluster page")
        cookie = driver.get_cookie("tessera_console")
        check(cookie is not None and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict",
              f"an HttpOnly, SameSite=Strict session cookie: {cookie}")
        shot("cluster")

        follow("Buckets", ec.presence_of_element_located((By.NAME, "bucket")))
        driver.find_element(By.NAME, "bucket").send_keys(BUCKET)
        submit("Create bucket", "Bucket created")

        payload = os.urandom(300_000) + b"tessera console walk-through\n"
        upload_dir = tempfile.mkdtemp(prefix="console-upload-")
        source = os.path.join(upload_dir, FILE_NAME)
        with open(source, "wb") as f:
            f.write(payload)
        driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(source)
        submit("Upload", "Uploaded")
        listed = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "a.object")]
        check(FILE_NAME in listed, f"{FILE_NAME} listed in the bucket: {listed}")
        shot("bucket")

        driver.find_element(By.LINK_TEXT, FILE_NAME).click()
        target = os.path.join(downloads, FILE_NAME)
        deadline = time.time() + 30
        while time.time() < deadline and not (
            os.path.exists(target) and os.path.getsize(target) == len(payload)
        ):
            time.sleep(0.2)
        check(os.path.exists(target), f"{FILE_NAME} downloaded into {downloads}")
        with open(target, "rb") as f:
            check(f.read() == payload, "the downloaded bytes equal the uploaded ones")

        follow("Buckets", ec.presence_of_element_located((By.LINK_TEXT, BUCKET)))
        row = driver.find_element(By.XPATH, f"//a[text()='{BUCKET}']/ancestor::tr").text
        check(" 1 " in f" {row} ", f"the bucket list counts one object: {row!r}")
        shot("buckets")

        follow("Access keys", ec.presence_of_element_located((By.NAME, "role")))
        shot("keys")
        follow("Jobs", ec.presence_of_element_located((By.CSS_SELECTOR, "table.jobs")))
        shot("jobs")
    finally:
        driver.quit()
    for path in shots:
        check_png(path)
    print(f"walk-through passed; screenshots: {', '.join(shots)}")
    return 0


def check_png(path: str) -> None:
    with open(path, "rb") as f:
        head = f.read(8)
    if head != b"\x89PNG\r\n\x1a\n" or os.path.getsize(path) < 5000:
        raise AssertionError(f"{path} is not a real screenshot")


if __name__ == "__main__":
    sys.exit(main())
