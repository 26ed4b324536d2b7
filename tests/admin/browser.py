"""Headless Chromium for the admin's browser test: Debian's `chromium` driven by its own
`chromedriver` through Selenium (no browser is downloaded; both come from Debian's packages, installed
by install_chromium.sh when missing)."""

import shutil
import subprocess
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts"  # screenshots of every run (git-ignored)
WIDTH = 1400


def ensure_chromium() -> tuple[str, str]:
    """(chromium, chromedriver) paths, installing Debian's packages first when they are missing."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        done = subprocess.run(
            ["sh", str(HERE / "install_chromium.sh")], capture_output=True, text=True, timeout=900, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"could not install chromium and chromium-driver:\n{done.stdout}\n{done.stderr}")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "chromium or chromedriver is still missing after install_chromium.sh"
    return chromium, driver


def start_chrome() -> webdriver.Chrome:
    chromium, driver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WIDTH},1000",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    browser.set_page_load_timeout(30)
    return browser


def screenshot(browser: webdriver.Chrome, name: str, *, full_page: bool = True) -> Path:
    """Save the page (all of it, at the test's width) as tests/artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if full_page:
        height = browser.execute_script("return Math.max(document.body.scrollHeight, 700)")
        browser.set_window_size(WIDTH, min(int(height) + 140, 6000))
    browser.save_screenshot(str(path))
    browser.set_window_size(WIDTH, 1000)
    return path
