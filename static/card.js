// The card step of checkout: Stripe.js turns the card into a token the server charges; a card that needs its
// bank's check (3-D Secure) is confirmed here, then the page reports back.
const cardForm = document.getElementById("card-form");
if (cardForm && window.Stripe) {
  const stripe = window.Stripe(cardForm.dataset.publishableKey);
  const card = stripe.elements().create("card");
  card.mount("#card-element");
  const error = document.getElementById("card-error");
  const button = document.getElementById("pay-button");
  cardForm.addEventListener("submit", async (event) => {
    const token = document.getElementById("card-token");
    if (token.value) {
      return;
    }
    event.preventDefault();
    button.disabled = true;
    const result = await stripe.createToken(card);
    if (result.error) {
      error.textContent = result.error.message || "Those card details could not be used.";
      button.disabled = false;
      return;
    }
    token.value = result.token.id;
    cardForm.submit();
  });
  if (cardForm.dataset.clientSecret) {
    stripe.confirmCardPayment(cardForm.dataset.clientSecret).then(() => {
      document.getElementById("return-form").submit();
    });
  }
}
