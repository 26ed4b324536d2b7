"""What a newcomer adding a context or a message would otherwise forget, named by a failing test."""

import configparser
import re
import tomllib
from pathlib import Path

import grimp
from django.apps import apps as app_registry
from django.conf import settings
from django.contrib import admin
from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

import saga
from orders import saga as place_order
from orders import saga_v1
from saga.messaging import catalog
from saga.operator.display import LedgerAdmin
from saga.orchestration import SagaDefinition
from saga.orchestration.registry import definitions

ROOT = Path(__file__).resolve().parents[1]


def _contexts() -> list[str]:
    """The bounded contexts: apps of this project with services and selectors, except orders, which composes them."""
    return sorted(
        p.parent.name
        for p in ROOT.glob("*/services.py")
        if (p.parent / "selectors.py").exists() and p.parent.name not in {"orders", "saga"}
    )


def _importlinter() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config


def _product() -> list[str]:
    """The packages of the product: the project's installed apps and the kernel (the tools in
    tools/ and the tests stand outside it). A new context is in it once it is installed."""
    installed = {name.split(".")[0] for name in settings.INSTALLED_APPS}
    return sorted({name for name in installed if (ROOT / name).is_dir()} | {"common"})


def _product_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*_product(), cache_dir=None)


def _product_modules(graph: grimp.ImportGraph) -> set[str]:
    return {m for m in graph.modules if ".tests" not in m and ".migrations" not in m}


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def test_the_message_table_of_the_readme_is_the_catalog() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"<!-- message-catalog -->\n(.*?)\n<!-- /message-catalog -->", readme, re.S)
    assert shown, "README.md lost its message-catalog markers"
    assert shown.group(1) == catalog.table(), "run `python manage.py message_catalog` and paste it into README.md"


def test_every_app_of_the_project_is_checked_by_import_linter() -> None:
    apps = sorted(p.parent.name for p in ROOT.glob("*/apps.py"))
    listed = _lines(_importlinter()["importlinter"]["root_packages"])
    assert set(apps) <= set(listed), f"add {sorted(set(apps) - set(listed))} to root_packages in .importlinter"


# What other apps may import of a context (services, selectors; messages and participant for a
# saga's typed commands), and what Django and the context's own ready() load (apps, migrations):
# every other module of it is hidden.
NOT_HIDDEN = {"__init__", "services", "selectors", "apps", "messages", "participant", "migrations"}


def test_every_context_sits_in_the_layers_and_behind_its_public_surface() -> None:
    config = _importlinter()
    layers = _lines(config["importlinter:contract:layers"]["layers"])
    middle = layers[layers.index("orders") + 1]
    hidden = _lines(config["importlinter:contract:context-public-surface"]["forbidden_modules"])
    for context in _contexts():
        assert context in [name.strip() for name in middle.split("|")], f"add {context} to the middle layer"
        modules = {p.stem for p in (ROOT / context).iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
        shown = sorted(f"{context}.{m}" for m in modules - NOT_HIDDEN if f"{context}.{m}" not in hidden)
        assert not shown, f"forbid {shown} in the context-public-surface contract"


def test_every_app_and_the_kernel_are_type_checked() -> None:
    checked = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    apps = {p.parent.name for p in ROOT.glob("*/apps.py")}
    assert apps | {"common"} <= set(checked), f"add {sorted((apps | {'common'}) - set(checked))} to mypy's files"


def test_every_context_is_named_by_each_contract_that_guards_it() -> None:
    config = _importlinter()
    reusable = _lines(config["importlinter:contract:saga-reusable"]["forbidden_modules"])
    public_users = _lines(config["importlinter:contract:saga-public-surface"]["source_modules"])
    kernel_forbids = _lines(config["importlinter:contract:shared-kernel"]["forbidden_modules"])
    for context in [*_contexts(), "orders"]:
        assert context in reusable, f"forbid {context} to the engine in the saga-reusable contract"
        assert context in public_users, f"hold {context} to the engine's public surface (saga-public-surface)"
        assert context in kernel_forbids, f"forbid {context} to common/ in the shared-kernel contract"


def test_a_contract_that_names_one_context_names_every_context() -> None:
    """A contract written for the contexts (as a layer, as sources, as forbidden modules) must not
    let a new one slip past it, whichever contract it is."""
    config = _importlinter()
    contexts = set(_contexts())
    for section in config.sections():
        if not section.startswith("importlinter:contract:"):
            continue
        named = {
            name.strip() for value in config[section].values() for line in _lines(value) for name in line.split("|")
        }
        if named & contexts:
            missing = sorted(contexts - named)
            assert not missing, (
                f"add {missing} to the {section.split(':')[-1]} contract, beside {sorted(named & contexts)}"
            )


def test_every_participant_record_is_shown_in_the_admin_as_the_ledger() -> None:
    """A context's per-order record (keyed by the order id) is what an operator reads when a saga
    is in doubt: shown in the admin, read-only."""
    records = [
        model
        for context in _contexts()
        for model in app_registry.get_app_config(context).get_models()
        if model._meta.pk.name == "order_id"
    ]
    assert records, "no participant record found: has their key changed?"
    unshown = [model._meta.label for model in records if not isinstance(admin.site._registry.get(model), LedgerAdmin)]
    assert not unshown, f"register {unshown} in their context's admin.py, as a LedgerAdmin"


def test_the_place_order_saga_is_drawn_as_it_is_declared() -> None:
    """The saga table of the README and the diagram in the definition's docstring show a row for
    each step of the newest version, and every reason a step can roll the saga back with."""
    definition = place_order.PLACE_ORDER
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## The place-order saga") :]
    table = table[: table.index("\n## ")]
    diagram = place_order.__doc__ or ""
    reasons = {step.failure_reason for step in definition.steps} - {""}
    for where, text, rows in (
        ("README.md's place-order table", table, re.findall(r"^\| \d+ \|", table, re.M)),
        ("the docstring of orders/saga.py", diagram, re.findall(r"^\d+\. ", diagram, re.M)),
    ):
        steps = len(definition.steps)
        assert len(rows) == steps, f"{where} shows {len(rows)} steps, v{definition.version} has {steps}"
        unnamed = sorted(reason for reason in reasons if reason not in text)
        assert not unnamed, f"{where} does not name {unnamed}"


def test_every_version_of_the_place_order_saga_is_registered() -> None:
    """A saga finishes under the version it started with: every version declared in orders/saga.py
    and the modules of older ones stays registered (orders/apps.py) until the last saga started
    under it has finished."""
    values = [*vars(place_order).values(), *vars(saga_v1).values()]
    declared = {value.key for value in values if isinstance(value, SagaDefinition)}
    registered = {definition.key for definition in definitions.all()}
    missing = sorted(f"{name} v{version}" for name, version in declared - registered)
    assert not missing, f"register {missing} in orders/apps.py"


def test_the_project_imports_only_the_engines_public_surface() -> None:
    graph = _product_graph()
    reached = {
        (importer, imported)
        for importer in _product_modules(graph)
        if importer.split(".")[0] != "saga"
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] == "saga" and imported not in saga.PUBLIC_SURFACE
    }
    assert not reached, f"these reach into the engine past saga.PUBLIC_SURFACE: {sorted(reached)}"


def test_the_import_graph_has_no_loop() -> None:
    graph = _product_graph()
    modules = _product_modules(graph)
    imports = {m: [i for i in graph.find_modules_directly_imported_by(m) if i in modules] for m in modules}
    loops = [loop for loop in _strongly_connected(imports) if len(loop) > 1]
    assert not loops, f"import loops (a lazy import inside a function counts): {loops}"


def test_no_import_runs_back_up_a_layer() -> None:
    """What lint-imports checks, here too, so that a broken floor fails the suite wherever it runs."""
    status = lint_imports(config_filename=str(ROOT / ".importlinter"), cache_dir=None, no_logo=True)
    assert status == EXIT_STATUS_SUCCESS, "an import contract is broken: its report is printed above"


def _strongly_connected(imports: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively: each is a loop when it has two modules or more."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in imports:
        if root in index:
            continue
        work = [(root, iter(imports[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, successors = work[-1]
            successor = next(successors, None)
            if successor is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    components.append(component)
            elif successor not in index:
                index[successor] = low[successor] = len(index)
                stack.append(successor)
                on_stack.add(successor)
                work.append((successor, iter(imports[successor])))
            elif successor in on_stack:
                low[module] = min(low[module], index[successor])
    return components
