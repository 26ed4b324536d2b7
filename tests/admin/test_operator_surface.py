"""What the operator reads in the admin agrees with the records: refusals say why as the API
does, counts and errors match the saga's attempts, keys are shown as the client sent them, and
only what may still be done is offered."""

import pytest
from django.contrib.auth import get_user_model

from customers.models import Customer
from inventory.models import Product

from .conftest import client_for


@pytest.fixture
def root(db):
    return client_for(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))


@pytest.mark.parametrize("model", [Customer, Product])
def test_deleting_a_row_orders_still_reference_is_refused_with_the_apis_reason(root, sagas, model):
    row = model.objects.get()  # the `shop` fixture's customer and product, both in placed orders
    reason = f"{model._meta.verbose_name} {row.pk} is referenced by orders"  # what the API answers (409)
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    page = root.get(f"{url}{row.pk}/delete/")
    assert page.status_code == 200 and reason in page.content.decode()
    assert b"permission to delete" not in page.content
    listed = root.post(url, {"action": "delete_selected", "_selected_action": [row.pk]})
    assert reason in listed.content.decode() and b"permission to delete" not in listed.content
    root.post(f"{url}{row.pk}/delete/", {"post": "yes"})
    root.post(url, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})
    assert model.objects.filter(pk=row.pk).exists()
